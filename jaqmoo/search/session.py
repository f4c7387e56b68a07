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
from jaqmoo.search.genome import GenomeSpace
from jaqmoo.search.problem import CandidateEvaluator, Constraints, JointProblem
from jaqmoo.search.runner import OnGeneration, SearchOutcome, run_search
from jaqmoo.search.store import ResultsStore


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
        # the uniform-bit seeds are the first individuals of generation 1
        "baselines": [{"label": f"uniform {b}-bit", "bits": b, "gen": 1, "idx": i} for i, b in enumerate(settings.seed_bits)],
        **(extra or {}),
    }


def search_in_directory(run_dir: str | Path, name: str, space: GenomeSpace, evaluator: CandidateEvaluator,
                        settings: SearchSettings, resume: bool = False, progress: bool = True,
                        meta_extra: dict | None = None, overwrite: bool = False,
                        on_generation: OnGeneration | None = None) -> SearchOutcome:
    """Run (or with ``resume`` continue) a search whose results go to ``run_dir``;
    ``on_generation`` is called after every completed generation (see :func:`run_search`)."""
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
    seeds = space.uniform_seeds(settings.seed_bits)
    algorithm = make_algorithm(settings.algorithm, settings.population, len(settings.objectives), seeds)
    return run_search(problem, algorithm, store, settings.generations, settings.seed, resume=resume, progress=progress,
                      on_generation=on_generation)


__all__: Sequence[str] = ["SearchSettings", "search_in_directory", "search_meta"]
