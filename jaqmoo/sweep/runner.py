"""Running an expanded sweep: lock the folder, skip finished runs, execute, write outputs."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from jaqmoo.errors import JaqmooError
from jaqmoo.locking import FolderLock
from jaqmoo.progress import progress_bar
from jaqmoo.safe_write import atomic_write_text
from jaqmoo.search.compat import SPEC_MAY_CHANGE, differences
from jaqmoo.sweep.executor import LOOPBACK, Task, make_backend, run_graph
from jaqmoo.sweep.outputs import RUNS, SWEEP_JSON, write_outputs
from jaqmoo.sweep.spec import SweepPlan
from jaqmoo.sweep.tasks import (
    checked_task,
    read_marker,
    run_task,
    supernet_task,
    write_marker,
    write_shared_marker,
)

LOCK = "sweep.lock"


@dataclass
class SweepOutcome:
    """What one launch of a sweep did."""

    dir: Path
    results: dict[str, dict]
    skipped: list[str]
    files: list[Path] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def failed(self) -> list[str]:
        return [k.split(":", 1)[1] for k, r in self.results.items() if k.startswith("run:") and r.get("status") != "done"]


def _check_resume(sweep_dir: Path, plan: SweepPlan) -> list[dict]:
    """Refuse to resume over finished runs whose spec changed; returns the earlier launches."""
    try:
        old = json.loads((sweep_dir / SWEEP_JSON).read_text())
    except ValueError as exc:
        raise JaqmooError(f"{sweep_dir / SWEEP_JSON} is corrupt ({exc}); start the sweep in a new --out folder") from None
    old_specs = {r["name"]: r["spec"] for r in old.get("runs", [])}
    for r in plan.runs:
        marker = read_marker(sweep_dir / RUNS / r.name) or {}
        if marker.get("status") == "done" and r.name in old_specs and \
                differences(old_specs[r.name], json.loads(json.dumps(r.spec)), SPEC_MAY_CHANGE):
            raise JaqmooError(f"--resume: run {r.name} finished with a different spec than {plan.source} now gives; "
                              "resume with the same sweep spec or use a new --out folder")
    return list(old.get("launches", []))


def _absolute(spec_data: dict) -> dict:
    """The spec with its supernet location as an absolute path (workers may run elsewhere)."""
    data = copy.deepcopy(spec_data)
    acc = data.setdefault("accuracy", {})
    for key in ("checkpoint", "cache_dir"):
        if acc.get(key):
            acc[key] = str(Path(acc[key]).expanduser().resolve())
    mapping = data.get("mapping") or {}
    if isinstance(mapping.get("cache_dir"), str):
        mapping["cache_dir"] = str(Path(mapping["cache_dir"]).expanduser().resolve())
    return data


def _checked(task: Task, shared: dict | None) -> Task:
    """``task`` run through :func:`~jaqmoo.sweep.tasks.checked_task` when ``shared`` names a marker."""
    if shared is None:
        return task
    return Task(task.key, checked_task, (shared, task.fn, *task.args), task.deps, task.meta)


def build_tasks(plan: SweepPlan, sweep_dir: Path, todo: list[str], threads: int | None,
                shared: dict | None = None, strict: bool = False) -> list[Task]:
    """The supernet tasks the pending runs need, then one task per pending run; with ``shared``
    (:func:`~jaqmoo.sweep.tasks.write_shared_marker`) each first checks that its worker sees the folder."""
    tasks: list[Task] = []
    needed = list(dict.fromkeys(plan.run(n).supernet for n in todo))
    for key in needed:
        tasks.append(_checked(Task(f"supernet:{key}", supernet_task, (
            key, _absolute(plan.supernet_specs[key]), f"{plan.source} [supernet {key}]", threads)), shared))
    for name in todo:
        r = plan.run(name)
        run_dir = str((sweep_dir / RUNS / name).resolve())
        tasks.append(_checked(Task(f"run:{name}", run_task, (
            name, _absolute(r.spec), f"{plan.source} [run {name}]", run_dir, threads, strict),
            deps=(f"supernet:{r.supernet}",), meta={"run_dir": run_dir}), shared))
    return tasks


def run_sweep(plan: SweepPlan, workers: int = 2, scheduler: str | None = None, resume: bool = False,
              threads: int | None = 1, progress: bool = True, max_attempts: int = 3,
              echo: Callable[[str], None] = print, listen: str = LOOPBACK, strict: bool = False) -> SweepOutcome:
    """Run every run of ``plan`` not finished yet into ``plan.output_dir`` (see the module doc
    of :mod:`jaqmoo.sweep.outputs` for the folder layout). ``listen``: the interface the services
    of a ``scheduler="local"`` Dask cluster bind to (default: loopback only). ``strict``: a run
    whose accuracy set-up is meaningless (:mod:`jaqmoo.quant.sanity`) fails instead of warning."""
    sweep_dir = Path(plan.output_dir or Path("runs") / plan.name)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with FolderLock(sweep_dir, LOCK, what="sweep"):  # a second launch into the folder gets LockHeld
        return _run_locked(plan, sweep_dir, workers, scheduler, resume, threads, progress, max_attempts, echo, t0,
                           listen, strict)


def _run_locked(plan: SweepPlan, sweep_dir: Path, workers: int, scheduler: str | None, resume: bool,
                threads: int | None, progress: bool, max_attempts: int, echo: Callable[[str], None],
                t0: float, listen: str = LOOPBACK, strict: bool = False) -> SweepOutcome:
    from tqdm.auto import tqdm

    launches: list[dict] = []
    if (sweep_dir / SWEEP_JSON).exists():
        if not resume:
            raise JaqmooError(f"{sweep_dir} already holds a sweep; pass --resume to finish it or --out to choose "
                              "another folder")
        launches = _check_resume(sweep_dir, plan)
    data = plan.to_dict() | {"launches": launches}
    atomic_write_text(sweep_dir / SWEEP_JSON, json.dumps(data, indent=1, default=str), "the sweep record")
    done = [r.name for r in plan.runs if (read_marker(sweep_dir / RUNS / r.name) or {}).get("status") == "done"]
    todo = [r.name for r in plan.runs if r.name not in done]
    echo(f"sweep {plan.name}: {len(plan.runs)} runs in {sweep_dir}"
         + (f"; {len(done)} already done (skipped), {len(todo)} to run" if done else ""))
    results: dict[str, dict] = {}
    backend_text = "nothing to run"
    if todo:
        backend = make_backend(workers, scheduler, listen)
        shared = write_shared_marker(sweep_dir) if backend.checks_shared_folder else None
        backend_text = backend.describe()
        echo(f"executor: {backend_text}")
        if backend.dashboard:
            echo(f"Dask dashboard: {backend.dashboard}")
        bar = progress_bar(total=len(plan.runs), initial=len(done), desc="runs", unit="run", disable=not progress)
        failures = 0

        def on_start(task: Task, attempt: int) -> None:
            again = f" (attempt {attempt})" if attempt > 1 else ""
            tqdm.write(f"  queued {task.key}{again}")

        def on_done(task: Task, record: dict) -> None:
            nonlocal failures
            if task.key.startswith("supernet:"):
                verb = "trained" if record.get("trained") else "loaded"
                text = f"{verb} in {record.get('wall_seconds', 0):.1f} s" if record.get("status") == "done" \
                    else f"FAILED: {record.get('error')}"
                tqdm.write(f"  {task.key}: {text}")
                return
            name = task.key.split(":", 1)[1]
            if "run" not in record:  # never ran (dependency failed, worker lost): the parent records it
                write_marker(task.meta["run_dir"], {"run": name, **record})
            if record.get("status") == "done":
                tqdm.write(f"  done {name}: {record.get('wall_seconds', 0):.1f} s, front {record.get('front_size')} points")
            else:
                failures += 1
                tqdm.write(f"  FAILED {name}: {record.get('error')}")
            bar.update(1)
            bar.set_postfix(failed=failures)

        try:
            results = run_graph(build_tasks(plan, sweep_dir, todo, threads, shared, strict), backend, on_start, on_done,
                                max_attempts)
        finally:
            bar.close()
            backend.close()
    wall = time.perf_counter() - t0
    data = json.loads((sweep_dir / SWEEP_JSON).read_text())
    data["launches"] = launches + [{"started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - wall)),
                                    "wall_seconds": round(wall, 2), "executor": backend_text,
                                    "ran": len(todo), "skipped": len(done)}]
    atomic_write_text(sweep_dir / SWEEP_JSON, json.dumps(data, indent=1, default=str), "the sweep record")
    files = write_outputs(sweep_dir, data)
    return SweepOutcome(sweep_dir, results, done, files, time.perf_counter() - t0)
