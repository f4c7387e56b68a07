"""Executors for sweep tasks and the dependency-driven loop that feeds them.

Two backends behind one ``concurrent.futures.Executor`` interface, so the loop in
:func:`run_graph` is the same code path for both:

* :class:`LocalPool` -- a ``ProcessPoolExecutor`` (spawned workers, each killed with its
  parent via ``PR_SET_PDEATHSIG`` on Linux);
* :class:`DaskBackend` -- ``distributed.Client(address).get_executor()`` on an existing
  cluster (``--scheduler tcp://host:port``) or a ``LocalCluster`` started for the sweep
  (``--scheduler local``). The LocalCluster's scheduler, workers and dashboard listen on
  127.0.0.1 only, unless ``listen`` (``--listen``) names another interface: a Dask scheduler
  runs whatever code a client sends it, so opening it lets everyone who reaches the port run
  code as you.

A task is submitted once every task it depends on has finished (a supernet before the
runs that share it). A task whose worker was lost (a crashed pool process, a Dask
``KilledWorker``) is submitted again, up to ``max_attempts`` times.

Attempts are charged per task. Dask knows which task a dead worker held. A local process
pool does not: one dying process breaks the whole pool, and every task in it fails with
``BrokenProcessPool``. So the local pool holds at most one task per worker (none waits inside
the pool), and after a break the tasks that were in it are *suspects*: each runs again alone,
and only a task that breaks the pool while it is the only one running is charged an attempt.
A run that kills its worker thus fails alone after ``max_attempts`` tries; the others lose
nothing but the restart.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from jaqmoo.errors import JaqmooError

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Task:
    """``fn(*args)`` to run once the tasks named in ``deps`` are done."""

    key: str
    fn: Callable[..., dict]
    args: tuple
    deps: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)


def die_with_parent() -> None:
    """Pool initializer: the worker gets SIGKILL when the sweep process dies (Linux)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)
    except OSError:  # not Linux: orphans finish their task; the run locks keep folders safe
        pass


class LocalPool:
    """A local process pool of ``workers`` processes."""

    name = "local pool"
    dashboard: str | None = None
    checks_shared_folder = False  # same machine, same files
    shared_failure = True  # one dead worker fails every task in the pool (see the module doc)

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise JaqmooError(f"--workers must be >= 1 (got {workers})")
        self.workers = workers
        self._executor: cf.ProcessPoolExecutor | None = None

    def executor(self) -> cf.Executor:
        if self._executor is None:
            self._executor = cf.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                    initializer=die_with_parent)
        return self._executor

    def lost_worker(self, exc: BaseException) -> bool:
        return isinstance(exc, BrokenProcessPool)

    def restart(self) -> cf.Executor:
        """A fresh pool after a worker died (a broken pool accepts no more tasks)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = None
        return self.executor()

    @property
    def capacity(self) -> int:
        """Tasks held at once: one per worker (none queued inside the pool)."""
        return self.workers

    def describe(self) -> str:
        return f"local process pool, {self.workers} worker{'s' if self.workers != 1 else ''}"

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


class DaskBackend:
    """Tasks on a Dask distributed cluster (an existing one, or a LocalCluster we start)."""

    name = "dask"
    checks_shared_folder = True  # workers may run on other machines: each task checks it sees the sweep folder
    shared_failure = False  # the scheduler charges only the task the dead worker held
    capacity = None  # the scheduler queues

    def __init__(self, scheduler: str, workers: int = 2, listen: str = LOOPBACK) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - distributed is a dependency
            raise JaqmooError("--scheduler needs the 'distributed' package: pip install distributed") from exc
        self.cluster = None
        if scheduler == "local":
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                        host=listen, dashboard_address=f"{listen}:0")
            address = self.cluster.scheduler_address
        else:
            address = scheduler
        try:
            self.client = Client(address, timeout="20s")
        except (OSError, TimeoutError) as exc:
            if self.cluster is not None:
                self.cluster.close()
            raise JaqmooError(f"--scheduler {scheduler}: cannot reach a Dask scheduler there ({exc}); start one "
                              "with `dask scheduler` / `dask worker ADDRESS`, or use --scheduler local") from None
        self.address = address
        self._executor: cf.Executor | None = None

    @property
    def dashboard(self) -> str | None:
        try:
            return self.client.dashboard_link
        except Exception:  # no bokeh: no dashboard
            return None

    def executor(self) -> cf.Executor:
        if self._executor is None:
            # pure=False: a re-submitted task is a new task, not the cached failed one
            self._executor = self.client.get_executor(pure=False)
        return self._executor

    def lost_worker(self, exc: BaseException) -> bool:
        from distributed.comm.core import CommClosedError
        from distributed.scheduler import KilledWorker

        return isinstance(exc, (KilledWorker, CommClosedError, cf.CancelledError))

    def restart(self) -> cf.Executor:
        return self.executor()  # the cluster re-schedules by itself; only the lost task is re-sent

    def describe(self) -> str:
        n = len(self.client.scheduler_info().get("workers", {}))
        where = "LocalCluster" if self.cluster is not None else "cluster"
        return f"Dask {where} at {self.address}, {n} worker{'s' if n != 1 else ''}"

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def make_backend(workers: int = 2, scheduler: str | None = None, listen: str = LOOPBACK) -> LocalPool | DaskBackend:
    """The local pool, or a Dask backend when a scheduler address (or ``local``) is given;
    ``listen``: the interface a ``local`` Dask cluster's services bind to (default loopback only)."""
    if listen != LOOPBACK and scheduler != "local":
        raise JaqmooError("--listen applies to --scheduler local only (an existing cluster binds where it was started)")
    return DaskBackend(scheduler, workers, listen) if scheduler else LocalPool(workers)


def run_graph(tasks: list[Task], backend: Any, on_start: Callable[[Task, int], None] | None = None,
              on_done: Callable[[Task, dict], None] | None = None, max_attempts: int = 3) -> dict[str, dict]:
    """Run ``tasks`` respecting their dependencies; returns ``{key: result record}``.

    A task whose dependency did not finish with ``status == "done"`` is not run; its record
    says which dependency failed. Records always carry ``status`` and ``attempts``.
    """
    by_key = {t.key: t for t in tasks}
    for t in tasks:
        for d in t.deps:
            if d not in by_key:
                raise ValueError(f"task {t.key} depends on unknown task {d}")
    results: dict[str, dict] = {}
    attempts: Counter[str] = Counter()  # submissions
    blamed: Counter[str] = Counter()  # lost workers charged to the task
    waiting = dict(by_key)
    suspects: list[str] = []  # tasks of a broken pool, to run one at a time (see the module doc)
    running: dict[cf.Future, str] = {}
    executor = backend.executor()
    shared_failure = bool(getattr(backend, "shared_failure", False))
    capacity = getattr(backend, "capacity", None)

    def finish(task: Task, record: dict) -> None:
        record = {**record, "attempts": attempts[task.key]}
        results[task.key] = record
        if on_done:
            on_done(task, record)

    def submit(key: str) -> None:
        attempts[key] += 1
        running[executor.submit(by_key[key].fn, *by_key[key].args)] = key
        if on_start:
            on_start(by_key[key], attempts[key])

    def submit_ready() -> None:
        if suspects:  # isolation: one suspect at a time, nothing beside it
            if not running:
                submit(suspects.pop(0))
            return
        for key, task in list(waiting.items()):
            if capacity is not None and len(running) >= capacity:
                return
            if not all(d in results for d in task.deps):
                continue
            del waiting[key]
            bad = [d for d in task.deps if results[d].get("status") != "done"]
            if bad:
                finish(task, {"status": "failed", "error": f"not run: {bad[0]} failed ({results[bad[0]].get('error')})"})
                continue
            submit(key)

    submit_ready()
    while running:
        alone = len(running) == 1
        done, _ = cf.wait(list(running), return_when=cf.FIRST_COMPLETED)
        lost: list[str] = []
        for fut in done:
            key = running.pop(fut)
            try:
                record = fut.result()
            except Exception as exc:
                if backend.lost_worker(exc):
                    lost.append(key)
                    continue
                record = {"status": "failed", "error": f"task raised after {attempts[key]} attempt(s): "
                                                       f"{type(exc).__name__}: {exc}"}
            finish(by_key[key], record)
        if shared_failure and lost:
            lost += list(running.values())  # a broken pool fails every task it held
            running.clear()
        charged = lost if (alone or not shared_failure) else []
        for key in lost:
            if key in charged:
                blamed[key] += 1
                if blamed[key] >= max_attempts:
                    finish(by_key[key], {"status": "failed", "error": (
                        f"worker lost after {attempts[key]} attempt(s): the task ended its worker process "
                        f"{blamed[key]} time(s) (crash, out of memory or a kill)")})
                    continue
            if shared_failure:
                suspects.append(key)  # runs again alone: charged only if it breaks the pool alone
            else:
                waiting[key] = by_key[key]
        if lost:
            executor = backend.restart()
        submit_ready()
    return results
