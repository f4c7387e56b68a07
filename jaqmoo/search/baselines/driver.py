"""Evaluation driver of the searchers that are not pymoo algorithms (uniform, random, haq).

:class:`EvaluationDriver` gives them what :func:`jaqmoo.search.runner.run_search` gives a
pymoo algorithm: every evaluated individual is stored in the run directory as it is
evaluated (same records, same ``gen``/``idx`` numbering: evaluation ``n`` is individual
``n % population`` of generation ``n // population + 1``), and after each completed
generation a ``history.csv`` row (evaluations so far, hypervolume and best values of the
front of everything evaluated so far) is written.

Resume replays the searcher: these searchers are deterministic given their seed, so a
resumed run asks for exactly the same individuals again; the ones already stored are
reused (not evaluated, not stored twice) and the search continues where the kill stopped
it. A replay that asks for a different individual than the stored one (another seed,
another version) is refused with a clear error instead of mixing two searches.
"""

from __future__ import annotations

import time

import numpy as np

from jaqmoo.errors import JaqmooError
from jaqmoo.progress import is_terminal, progress_bar
from jaqmoo.search.indicators import hv_scale, hypervolume, non_dominated
from jaqmoo.search.problem import PENALTY, JointProblem, constraint_matrix, objective_matrix
from jaqmoo.search.runner import OnGeneration, best_values
from jaqmoo.search.store import ResultsStore


class EvaluationDriver:
    """Numbers, scores, stores and summarises the individuals a searcher asks for."""

    def __init__(self, problem: JointProblem, store: ResultsStore, population: int, budget: int,
                 resume: bool = False, progress: bool = True, on_generation: OnGeneration | None = None) -> None:
        if population < 1:
            raise JaqmooError(f"search.population must be >= 1 (got {population})")
        self.problem = problem
        self.store = store
        self.population = population
        self.budget = budget
        self.n = 0  # evaluations so far (reused ones included)
        self.history: list[dict] = []
        self.on_generation = on_generation
        self._scale: list[float] | None = None
        self._front = np.zeros((0, problem.n_obj))
        self._first_gen: list[np.ndarray] = []
        self._stored: dict[tuple[int, int], list[int]] = {}
        if resume:
            records = store.read_records()
            self._stored = {(r["gen"], r["idx"]): list(r["genes"]) for r in records}
            problem.pending = {(r["gen"], r["idx"]): r for r in records}
        problem.store = None  # the driver appends (only what is not stored yet)
        problem.on_batch = self._flush
        self._start = time.perf_counter()
        # a terminal: one bar redrawn per evaluation; a log file: one line per generation (episode)
        self._bar = progress_bar(total=budget, unit="eval", desc="search", disable=not progress, dynamic_ncols=True)
        self._lines = progress_bar(lines=True, total=-(-budget // population), unit="gen", desc="search",
                                   disable=not progress or is_terminal())

    @property
    def remaining(self) -> int:
        """Evaluations left in the budget."""
        return self.budget - self.n

    def _flush(self, records: list[dict]) -> None:
        new = []
        for r in records:
            old = self._stored.get((r["gen"], r["idx"]))
            if old is None:
                new.append(r)
            elif old != list(r["genes"]):
                raise JaqmooError(
                    f"--resume: {self.store.dir} holds another individual at generation {r['gen']}, index {r['idx']} "
                    "than this searcher asks for on replay (a different seed, budget or version); "
                    "start a new run with --out"
                )
        self.store.append(new)

    def evaluate(self, X: np.ndarray) -> list[dict]:
        """Score the rows of ``X`` (genomes) in order; one record each."""
        X = np.atleast_2d(np.asarray(X))
        if len(X) > self.remaining:
            raise JaqmooError(f"internal: the searcher asked for {len(X)} evaluations with {self.remaining} left")
        records: list[dict] = []
        pos = 0
        while pos < len(X):
            gen, idx = self.n // self.population + 1, self.n % self.population
            take = min(len(X) - pos, self.population - idx)
            part = self.problem.score(X[pos:pos + take], generation=gen, first_idx=idx)
            self._archive(part)
            records.extend(part)
            pos += take
            self.n += take
            self._bar.update(take)
            if self.n % self.population == 0 or self.n == self.budget:
                self._end_generation(gen)
        return records

    def _archive(self, records: list[dict]) -> None:
        F = objective_matrix(records, self.problem.objectives)
        G = constraint_matrix(records, self.problem.constraints)
        ok = np.all(G <= 0, axis=1) & np.all(F < PENALTY, axis=1)
        if self._scale is None:
            self._first_gen.append(F[np.all(F < PENALTY, axis=1)])
        if ok.any():
            both = np.vstack([self._front, F[ok]])
            self._front = both[non_dominated(both)]

    def _end_generation(self, gen: int) -> None:
        if self._scale is None:
            first = np.vstack(self._first_gen) if self._first_gen else np.zeros((0, self.problem.n_obj))
            self._scale = hv_scale(first)
        row = {"generation": gen, "evaluations": self.n, "front_size": len(self._front),
               "hypervolume": hypervolume(self._front, self._scale),
               **best_values(self._front, self.problem.objectives)}
        self.history.append(row)
        self.store.write_history(self.history)
        if self.on_generation is not None:
            self.on_generation(row)
        self._bar.set_postfix({"gen": gen, "hv": f"{row['hypervolume']:.4g}"})
        self._lines.set_postfix({"evals": self.n, "hv": f"{row['hypervolume']:.4g}"})
        self._lines.update(1)

    def close(self) -> float:
        """Close the progress bar; the seconds since the driver started."""
        self._bar.close()
        self._lines.close()
        return time.perf_counter() - self._start
