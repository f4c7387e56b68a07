"""Population evaluation of one run on a process pool (measured by
``benchmarks/population_executor.py``; see the README for where it pays).

:class:`PoolEvaluator` wraps any :class:`~jaqmoo.search.problem.CandidateEvaluator`: the
evaluator is sent once to every worker through multiprocessing's pipe (its estimator, workload and caches travel with
it), each ``evaluate(candidates)`` call is split into one contiguous chunk per worker and the
records come back in the candidates' order, so results are identical to the in-process
evaluator's. Caches filled in the workers stay there (a worker sees about 1/N of the
search's revisits).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections.abc import Sequence
from typing import Any

_WORKER: dict[str, Any] = {}  # per worker process: its copy of the evaluator (set by the initializer)


def _init_worker(evaluator: Any, threads: int) -> None:
    from jaqmoo.sweep.executor import die_with_parent

    die_with_parent()
    if threads:
        import torch

        torch.set_num_threads(threads)
    _WORKER["evaluator"] = evaluator


def _evaluate_chunk(candidates: list) -> list[dict[str, Any]]:
    return _WORKER["evaluator"].evaluate(candidates)


class PoolEvaluator:
    """``evaluate(candidates)`` split across ``workers`` processes holding copies of ``evaluator``."""

    def __init__(self, evaluator: Any, workers: int = 2, threads: int = 1) -> None:
        self.evaluator = evaluator
        self.workers = workers
        self.threads = threads
        self._pool: cf.ProcessPoolExecutor | None = None

    def __getattr__(self, name: str) -> Any:  # energy_source, accuracy ... of the wrapped evaluator
        if name == "evaluator":
            raise AttributeError(name)
        return getattr(self.evaluator, name)

    def _executor(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            # the evaluator goes to the workers this process starts through multiprocessing's own pipe
            # (in memory, once per worker); nothing is read back from a file
            self._pool = cf.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_init_worker, initargs=(self.evaluator, self.threads))
        return self._pool

    def evaluate(self, candidates: Sequence[Any]) -> list[dict[str, Any]]:
        candidates = list(candidates)
        if len(candidates) < 2 or self.workers < 2:
            return self.evaluator.evaluate(candidates)
        n = min(self.workers, len(candidates))
        bounds = [len(candidates) * i // n for i in range(n + 1)]
        pool = self._executor()
        futures = [pool.submit(_evaluate_chunk, candidates[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
        out: list[dict[str, Any]] = []
        for f in futures:
            out.extend(f.result())
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
