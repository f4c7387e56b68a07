"""Running a registered searcher (:data:`~.searcher.SEARCHERS`) in a run directory."""

from __future__ import annotations

from typing import Any

from jaqmoo.search.baselines.driver import EvaluationDriver
from jaqmoo.search.baselines.searcher import Searcher, common_first_population
from jaqmoo.search.problem import JointProblem
from jaqmoo.search.runner import OnGeneration, SearchOutcome, run_search
from jaqmoo.search.store import ResultsStore


def run_searcher(searcher: Searcher, problem: JointProblem, store: ResultsStore, settings: Any, evaluator: Any,
                 workload: Any = None, resume: bool = False, progress: bool = True,
                 on_generation: OnGeneration | None = None) -> SearchOutcome:
    """Run ``searcher`` as ``settings`` (a :class:`~jaqmoo.search.session.SearchSettings`) asks:
    a pymoo-based one like the joint search, a driven one by :func:`run_driven`."""
    if searcher.algorithm is not None:
        algorithm = searcher.algorithm(problem.space, settings.population,
                                       common_first_population(problem.space, settings))
        return run_search(problem, algorithm, store, settings.generations, settings.seed, resume=resume,
                          progress=progress, on_generation=on_generation)
    return run_driven(searcher, problem, store, settings, evaluator, workload, resume=resume, progress=progress,
                      on_generation=on_generation)


def run_driven(searcher: Searcher, problem: JointProblem, store: ResultsStore, settings: Any, evaluator: Any,
               workload: Any = None, resume: bool = False, progress: bool = True,
               on_generation: OnGeneration | None = None) -> SearchOutcome:
    """Run a driven searcher with a budget of ``population x generations`` evaluations (or the
    searcher's own); the searcher's own facts go to ``meta.json`` ``search_info``.
    ``on_generation`` (e.g. the report writer) runs after every completed generation."""
    space = problem.space
    budget = searcher.budget(space) if searcher.budget is not None else settings.population * settings.generations
    driver = EvaluationDriver(problem, store, settings.population, budget, resume=resume, progress=progress,
                              on_generation=on_generation)
    info: dict = {"algorithm": settings.algorithm, "budget": budget}
    try:
        info.update(searcher.drive(driver, space, settings, evaluator, workload) or {})
    finally:
        seconds = driver.close()
    meta = store.read_meta()
    meta["search_info"] = {**info, "evaluations": driver.n, "computed": problem.n_evaluated, "reused": problem.n_reused}
    store.write_meta(meta)
    return SearchOutcome(None, driver.history, driver.n, 0, seconds)
