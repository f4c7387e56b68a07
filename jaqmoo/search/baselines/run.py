"""Running a driven searcher (uniform, random, haq) in a run directory."""

from __future__ import annotations

from typing import Any

from jaqmoo.errors import JaqmooError
from jaqmoo.search.baselines.driver import EvaluationDriver
from jaqmoo.search.problem import JointProblem
from jaqmoo.search.runner import SearchOutcome
from jaqmoo.search.store import ResultsStore


def run_driven(problem: JointProblem, store: ResultsStore, settings: Any, evaluator: Any, workload: Any = None,
               resume: bool = False, progress: bool = True, on_generation: Any = None) -> SearchOutcome:
    """Run ``settings.algorithm`` (a :class:`~jaqmoo.search.session.SearchSettings`) with a budget of
    ``population x generations`` evaluations; the searcher's own facts go to ``meta.json`` ``search_info``.
    ``on_generation`` (e.g. the report writer) runs after every completed generation."""
    space = problem.space
    budget = settings.population * settings.generations
    if settings.algorithm == "uniform":
        from jaqmoo.search.baselines.uniform import uniform_genomes

        budget = len(uniform_genomes(space)[0])  # every uniform policy, whatever the budget
    driver = EvaluationDriver(problem, store, settings.population, budget, resume=resume, progress=progress,
                              on_generation=on_generation)
    info: dict = {"algorithm": settings.algorithm, "budget": budget}
    try:
        if settings.algorithm == "uniform":
            from jaqmoo.search.baselines.uniform import run_uniform

            run_uniform(driver, space)
        elif settings.algorithm == "random":
            from jaqmoo.search.baselines.random_search import run_random

            run_random(driver, space, settings.seed_bits, settings.seed)
        elif settings.algorithm == "haq":
            from jaqmoo.search.baselines.haq import HaqSettings, run_haq

            if workload is None:
                raise JaqmooError("haq needs the network's layer shapes: pass workload= (or an evaluator with .workload)")
            info.update(run_haq(driver, space, evaluator, workload,
                                HaqSettings(settings.haq_resource, tuple(settings.haq_budgets)), settings.seed))
        else:
            raise JaqmooError(f"internal: {settings.algorithm!r} is not a driven searcher")
    finally:
        seconds = driver.close()
    meta = store.read_meta()
    meta["search_info"] = {**info, "evaluations": driver.n, "computed": problem.n_evaluated, "reused": problem.n_reused}
    store.write_meta(meta)
    return SearchOutcome(None, driver.history, driver.n, 0, seconds)
