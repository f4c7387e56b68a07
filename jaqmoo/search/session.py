"""One search in one run directory: metadata, seeds, store, algorithm, loop.

:func:`search_in_directory` is what :func:`jaqmoo.experiment.run_experiment` calls once the
model, hardware and estimators are built; tests call it with a fake evaluator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from jaqmoo.errors import JaqmooError
from jaqmoo.search.algorithms import make_algorithm
from jaqmoo.search.baselines import DRIVEN, baseline_entries, searcher_space
from jaqmoo.search.baselines.bits_nsga2 import make_bits_nsga2
from jaqmoo.search.baselines.run import run_driven
from jaqmoo.search.genome import GenomeSpace
from jaqmoo.search.problem import CandidateEvaluator, Constraints, JointProblem
from jaqmoo.search.runner import SearchOutcome, run_search
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
        "settings": asdict(settings),
        # where the uniform-bit policies are stored (the joint search: its seeds, generation 1)
        "baselines": baseline_entries(settings.algorithm, space, settings.population, settings.seed_bits),
        **(extra or {}),
    }


def search_in_directory(run_dir: str | Path, name: str, space: GenomeSpace, evaluator: CandidateEvaluator,
                        settings: SearchSettings, resume: bool = False, progress: bool = True,
                        meta_extra: dict | None = None, overwrite: bool = False,
                        workload: Workload | None = None) -> SearchOutcome:
    """Run (or with ``resume`` continue) a search whose results go to ``run_dir``.

    ``settings.algorithm`` is a pymoo algorithm (``nsga2``...) or one of the seed papers'
    searchers (:data:`jaqmoo.search.baselines.SEARCHERS`); ``haq`` also needs the layer shapes
    (``workload``, by default the evaluator's ``workload``).
    """
    space = searcher_space(settings.algorithm, space)
    store = ResultsStore(run_dir)
    meta = search_meta(name, space, settings, meta_extra)
    if resume:
        if not store.exists():
            raise JaqmooError(f"--resume: {run_dir} holds no run to resume; run without --resume first")
        old = store.read_meta()
        for key in ("objectives", "gene_names", "constraints"):
            if old.get(key) != meta[key]:
                raise JaqmooError(
                    f"--resume: {run_dir} was started with a different {key} ({old.get(key)} vs {meta[key]}); "
                    "resume with the same spec or start a new run with --out"
                )
    else:
        store.create(overwrite=overwrite)
    store.write_meta(meta)
    problem = JointProblem(space, evaluator, settings.objectives, settings.constraints, store, settings.batch_size)
    if settings.algorithm in DRIVEN:
        return run_driven(problem, store, settings, evaluator, workload or getattr(evaluator, "workload", None),
                          resume=resume, progress=progress)
    if settings.algorithm == "bits-nsga2":
        algorithm = make_bits_nsga2(space, settings.population)
    else:
        algorithm = make_algorithm(settings.algorithm, settings.population, len(settings.objectives),
                                   space.uniform_seeds(settings.seed_bits))
    return run_search(problem, algorithm, store, settings.generations, settings.seed, resume=resume, progress=progress)


__all__: Sequence[str] = ["SearchSettings", "search_in_directory", "search_meta"]
