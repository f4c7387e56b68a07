"""One search in one run directory: metadata, seeds, store, algorithm, loop.

:func:`search_in_directory` is what :func:`jaqmoo.experiment.run_experiment` calls once the
model, hardware and estimators are built; tests call it with a fake evaluator.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from jaqmoo.errors import JaqmooError
from jaqmoo.locking import FolderLock
from jaqmoo.safe_write import DiskWriteError
from jaqmoo.search.algorithms import make_algorithm
from jaqmoo.search.baselines import (
    baseline_entries,
    common_first_population,
    run_searcher,
    searcher_for,
    searcher_space,
)
from jaqmoo.search.compat import check_resume_meta
from jaqmoo.search.genome import GenomeSpace
from jaqmoo.search.problem import CandidateEvaluator, Constraints, JointProblem
from jaqmoo.search.runner import OnGeneration, SearchOutcome, run_search
from jaqmoo.search.store import ResultsStore
from jaqmoo.workload import Workload


@dataclass(frozen=True)
class SearchSettings:
    """Algorithm, budget and objectives of one search."""

    objectives: tuple[str, ...]
    constraints: Constraints = Constraints()
    algorithm: str = "nsga2"
    population: int = 32
    generations: int = 20
    seed: int = 0
    seed_bits: tuple[int, ...] = (8, 6, 4)
    batch_size: int = 16
    init: str = "own"  # first population: each searcher's own, or a common "spread" / "random" one
    haq_resource: str = "energy"  # haq only: the resource the action wall holds to
    haq_budgets: tuple[float, ...] = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # haq only: fractions of max-bit cost


def search_meta(name: str, space: GenomeSpace, settings: SearchSettings, extra: dict | None = None) -> dict:
    """The ``meta.json`` of a run: everything needed to read its evaluations back."""
    return {
        "name": name,
        "objectives": list(settings.objectives),
        "constraints": asdict(settings.constraints),
        "layer_names": list(space.layer_names),
        "gene_names": space.gene_names(),
        "mapping_mode": space.mapping_mode,
        "hardware_genes": [{"name": g.name, "choices": list(g.choices), "default": g.default} for g in space.hardware_genes],
        "hardware_fixed": dict(space.hardware_fixed),
        "space": {"weight_choices": list(space.weight_choices), "act_choices": list(space.act_choices),
                  "fixed_layers": {space.layer_names[i]: list(b) for i, b in sorted(space.fixed_layers.items())},
                  "mapping_candidates": space.mapping_candidates,
                  # an architecture search's space (jaqmoo.search.arch_genes): resume must keep it
                  **({"elastic": space.elastic_space} if hasattr(space, "elastic_space") else {})},
        "settings": asdict(settings),
        # where the uniform-bit policies are stored (the joint search: its seeds, generation 1)
        "baselines": (space.baseline_entries(settings.seed_bits) if hasattr(space, "baseline_entries")
                      else baseline_entries(settings.algorithm, space, settings.population, settings.seed_bits,
                                            settings.init)),
        **(extra or {}),
    }


def search_in_directory(run_dir: str | Path, name: str, space: GenomeSpace, evaluator: CandidateEvaluator,
                        settings: SearchSettings, resume: bool = False, progress: bool = True,
                        meta_extra: dict | None = None, overwrite: bool = False, locked: bool = False,
                        on_generation: OnGeneration | None = None, workload: Workload | None = None) -> SearchOutcome:
    """Run (or with ``resume`` continue) a search whose results go to ``run_dir``.

    ``settings.algorithm`` is a pymoo algorithm (``nsga2``...) or one of the seed papers'
    searchers (:data:`jaqmoo.search.baselines.SEARCHERS`); ``haq`` also needs the layer shapes
    (``workload``, by default the evaluator's ``workload``).
    The run folder's lock (:class:`jaqmoo.locking.FolderLock`) is held for the whole search
    unless ``locked`` says the caller already holds it. On resume the stored layout and
    settings must match (:func:`jaqmoo.search.compat.check_resume_meta`); ``meta.json`` then
    records the settings actually used and a ``resumes`` entry per resume. ``on_generation``
    is called after every completed generation (see :func:`run_search`).
    """
    space = searcher_space(settings.algorithm, space)
    args = (run_dir, name, space, evaluator, settings, resume, progress, meta_extra, overwrite, on_generation, workload)
    try:
        if locked:
            return _search(*args)
        with FolderLock(run_dir, what="run"):
            return _search(*args)
    except DiskWriteError as exc:
        raise JaqmooError(f"{exc}. {saved_so_far(run_dir)}") from None


def saved_so_far(run_dir: str | Path) -> str:
    """What a run folder keeps after a failed write, and how to continue (for the error message)."""
    store = ResultsStore(run_dir)
    try:
        n = len(store.read_records())
        done = store.history_evaluations()
        gens = len(store.dir.joinpath("history.csv").read_text(encoding="utf-8").splitlines()) - 1 if done else 0
    except (OSError, JaqmooError, UnicodeDecodeError):
        return f"Nothing already stored in {run_dir} was changed; fix the disk, then resume with --resume."
    return (f"{run_dir} keeps the {n} evaluations stored so far ({gens} complete generation(s), checkpointed); "
            f"nothing stored was lost. Once the disk has room or the folder is writable, "
            f"`jaqmoo run SPEC --out {run_dir} --resume` continues from there")


def _search(run_dir: str | Path, name: str, space: GenomeSpace, evaluator: CandidateEvaluator,
            settings: SearchSettings, resume: bool, progress: bool, meta_extra: dict | None,
            overwrite: bool, on_generation: OnGeneration | None, workload: Workload | None = None) -> SearchOutcome:
    store = ResultsStore(run_dir)
    meta = search_meta(name, space, settings, meta_extra)
    if resume:
        if not store.exists():
            raise JaqmooError(f"--resume: {run_dir} holds no run to resume; run without --resume first")
        if store.meta_path.exists():  # a damaged one moved aside by `jaqmoo repair` is rewritten
            old = store.read_meta()
            check_resume_meta(run_dir, old, meta)
            meta["resumes"] = list(old.get("resumes", []))
        checkpoint = store.load_checkpoint()
        meta.setdefault("resumes", []).append({
            "at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "from_generation": checkpoint.generation if checkpoint else 0, "generations": settings.generations})
    else:
        store.create(overwrite=overwrite)
    store.write_meta(meta)
    problem = JointProblem(space, evaluator, settings.objectives, settings.constraints, store, settings.batch_size)
    searcher = searcher_for(settings.algorithm)
    if searcher is not None:
        return run_searcher(searcher, problem, store, settings, evaluator,
                            workload or getattr(evaluator, "workload", None), resume=resume, progress=progress,
                            on_generation=on_generation)
    if settings.init == "own":  # the seeds, then genomes spread over precision levels
        algorithm = make_algorithm(settings.algorithm, settings.population, len(settings.objectives),
                                   space.uniform_seeds(settings.seed_bits), space.level_genes)
    else:  # the first population common to every searcher
        algorithm = make_algorithm(settings.algorithm, settings.population, len(settings.objectives),
                                   common_first_population(space, settings))
    return run_search(problem, algorithm, store, settings.generations, settings.seed, resume=resume, progress=progress,
                      on_generation=on_generation)


__all__: Sequence[str] = ["SearchSettings", "search_in_directory", "search_meta"]
