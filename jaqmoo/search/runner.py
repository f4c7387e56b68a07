"""The generation loop: ask / evaluate / tell, checkpoint, progress, resume.

:func:`run_search` drives a pymoo algorithm through pymoo's ask-and-tell interface so that
after every completed generation the algorithm's state (population, random generator,
generation counter: :mod:`jaqmoo.search.algo_state`, plain data, never a pickle) is
checkpointed in the run directory. ``resume=True`` writes the last checkpoint's state into the
freshly built algorithm and re-asks the interrupted generation: the restored random generator produces
exactly the same offspring, whose already stored evaluations are reused, so a killed and
resumed run evaluates, stores and returns exactly what an uninterrupted run would. When the
stored records of the checkpoint's generations are incomplete (a repaired or partly deleted
evaluations file, a lost checkpoint) the search is *replayed* from its seed: every stored
record is reused, only the missing individuals are evaluated, and the file ends up in the
uninterrupted run's order.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from pymoo.core.algorithm import Algorithm
from pymoo.termination.max_gen import MaximumGenerationTermination

from jaqmoo.errors import JaqmooError
from jaqmoo.objectives import from_minimised
from jaqmoo.progress import progress_bar
from jaqmoo.search.algo_state import StateError, capture, restore
from jaqmoo.search.indicators import hv_scale, hypervolume
from jaqmoo.search.problem import PENALTY, JointProblem
from jaqmoo.search.store import Checkpoint, ResultsStore


@dataclass
class SearchOutcome:
    """What a finished search leaves besides the run directory."""

    algorithm: Algorithm
    history: list[dict] = field(default_factory=list)
    n_evaluations: int = 0
    resumed_from: int = 0  # last generation restored from a checkpoint (0 = fresh run)
    seconds: float = 0.0


def _feasible_front(algorithm: Algorithm) -> np.ndarray:
    opt = algorithm.opt
    if opt is None or len(opt) == 0:
        return np.zeros((0, algorithm.problem.n_obj))
    F, feas = opt.get("F"), opt.get("FEAS").ravel()
    F = F[feas]
    return F[np.all(F < PENALTY, axis=1)]


def best_values(F: np.ndarray, objectives: tuple[str, ...]) -> dict[str, float]:
    """Best value of each objective over the rows of ``F`` (accuracy back as a fraction)."""
    best = {}
    for j, o in enumerate(objectives):
        if len(F) == 0:
            best[f"best_{o}"] = float("nan")
            continue
        v = float(F[:, j].min())
        best[f"best_{o}"] = from_minimised(o, v)
    return best


OnGeneration = Callable[[dict], None]
"""Called after each completed generation (checkpoint and history written) with its history row."""


def run_search(problem: JointProblem, algorithm: Algorithm, store: ResultsStore, generations: int,
               seed: int, resume: bool = False, progress: bool = True,
               on_generation: OnGeneration | None = None) -> SearchOutcome:
    """Run (or continue) ``algorithm`` on ``problem`` for ``generations`` generations.

    ``on_generation`` (e.g. the experiment layer's report writer) runs after every completed
    generation, once its records, checkpoint and history are on disk.
    """
    start = time.perf_counter()
    history: list[dict] = []
    scale: list[float] | None = None
    n_evals = 0
    done = 0
    if resume:
        checkpoint, pending = store.prepare_resume()
        problem.pending = pending
        if checkpoint is not None:
            algorithm.setup(problem, termination=("n_gen", generations), seed=seed, verbose=False)
            try:
                restore(algorithm, *checkpoint.state)
            except StateError as exc:
                raise JaqmooError(
                    f"{store.checkpoint_path}: {exc}; delete the checkpoint and resume again: the search is "
                    "replayed from its seed, reusing every stored evaluation") from None
            history, scale, n_evals = list(checkpoint.history), checkpoint.hv_scale, checkpoint.n_evaluations
            done = checkpoint.generation
            algorithm.termination = MaximumGenerationTermination(generations)
        elif pending:
            history, scale, n_evals = [], None, 0  # replay from the seed (see the module doc)
    if done == 0:
        algorithm.setup(problem, termination=("n_gen", generations), seed=seed, verbose=False)
    if done >= generations:
        return SearchOutcome(algorithm, history, n_evals, done, time.perf_counter() - start)

    bar = progress_bar(lines=True, total=generations, initial=done, unit="gen", desc="search", disable=not progress, dynamic_ncols=True)
    try:
        while algorithm.has_next():
            pop = algorithm.ask()
            gen = int(algorithm.n_iter)
            if pop is None or len(pop) == 0:
                raise JaqmooError(
                    f"the algorithm produced no new individuals at generation {gen}: the search space is "
                    "too small for this population; widen the bit/hardware choices or lower the population"
                )
            algorithm.evaluator.eval(problem, pop, generation=gen)
            algorithm.tell(infills=pop)
            n_evals += len(pop)
            if scale is None:
                feas = pop.get("F")[pop.get("FEAS").ravel()]
                scale = hv_scale(feas if len(feas) else pop.get("F"))
            front = _feasible_front(algorithm)
            row = {"generation": gen, "evaluations": n_evals, "front_size": len(front),
                   "hypervolume": hypervolume(front, scale), **best_values(front, problem.objectives)}
            history.append(row)
            store.sort_records()
            store.save_checkpoint(Checkpoint(gen, history, n_evals, scale, capture(algorithm)))
            store.write_history(history)
            if on_generation is not None:
                on_generation(row)
            bar.set_postfix({"evals": n_evals, "hv": f"{row['hypervolume']:.4g}",
                             **{k[5:]: f"{v:.4g}" for k, v in row.items() if k.startswith("best_")}}, refresh=False)
            bar.update(1)  # after the postfix: off a terminal, each update prints its generation's line
    finally:
        bar.close()
    return SearchOutcome(algorithm, history, n_evals, done, time.perf_counter() - start)
