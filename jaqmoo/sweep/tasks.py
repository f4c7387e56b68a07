"""What a sweep worker executes: one supernet, or one run into its own run folder.

Both functions take and return plain data (picklable for a process pool and for Dask), never
raise for a failing experiment (the error and traceback come back in the record), and hold
a file lock while they write, so a task re-submitted after a lost worker, or an orphaned
worker of a killed sweep, never writes the same folder twice at once.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
import traceback
from pathlib import Path
from typing import Any

from jaqmoo.safe_write import atomic_write_text

MARKER = "sweep_run.json"
RUN_LOCK = ".sweep-run.lock"
SHARED_MARKER = ".jaqmoo-shared-folder"
"""Written by the client into the sweep folder; a Dask worker that cannot read it (with the
sweep's token) does not see the folder and fails the task instead of writing elsewhere."""


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(int(threads))


def _failure(exc: BaseException) -> dict[str, Any]:
    return {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
            "traceback": "".join(traceback.format_exception(exc))[-4000:]}


def read_marker(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's ``sweep_run.json`` (None when absent or unreadable)."""
    path = Path(run_dir) / MARKER
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_marker(run_dir: str | Path, record: dict[str, Any]) -> None:
    """Atomically replace the run's ``sweep_run.json``."""
    atomic_write_text(Path(run_dir) / MARKER, json.dumps(record, indent=1, default=str), "the run's sweep marker")


def write_shared_marker(sweep_dir: str | Path) -> dict[str, str]:
    """Write the sweep folder's marker with a fresh random token; ``{"marker": path, "token": ...}``."""
    path = (Path(sweep_dir) / SHARED_MARKER).resolve()
    token = secrets.token_hex(16)
    atomic_write_text(path, token + "\n", "the shared-folder marker")
    return {"marker": str(path), "token": token}


def sees_shared_folder(shared: dict[str, str]) -> str | None:
    """``None`` when this process reads the marker of ``shared``; else why not (the failure message)."""
    path = Path(shared["marker"])
    try:
        found = path.read_text().strip()
    except OSError as exc:
        found = f"unreadable ({exc.strerror or exc})"
    if found == shared["token"]:
        return None
    seen = "a marker of another launch" if len(found) == 32 else (found if found.startswith("unreadable") else "none")
    return (f"worker {socket.gethostname()} (pid {os.getpid()}) does not see the sweep folder {path.parent}: "
            f"the marker {path} that the client wrote is missing there (found: {seen}). Every Dask worker must "
            "read and write the sweep folder at the same path as the client (a shared file system such as NFS, "
            "Lustre or GPFS mounted at that path; see docs/scale-out.md); nothing was written on this worker")


def checked_task(shared: dict[str, str], fn: Any, *args: Any) -> dict[str, Any]:
    """``fn(*args)`` if this worker sees the sweep folder (:func:`sees_shared_folder`), else a failure record."""
    problem = sees_shared_folder(shared)
    if problem is not None:
        return {"status": "failed", "error": problem, "host": socket.gethostname()}
    return fn(*args)


def _wait_for(folder: Path, name: str, what: str) -> Any:
    """Hold ``folder/name`` (:class:`jaqmoo.locking.FolderLock`), waiting while another process has it."""
    from jaqmoo.locking import FolderLock, wait_for_lock

    return wait_for_lock(FolderLock(folder, name, what=what))


def supernet_task(key: str, spec_data: dict, source: str, threads: int | None = 1) -> dict[str, Any]:
    """Train (or load, when it is already finished) the supernet every run of ``key`` shares."""
    from jaqmoo.data import load_dataset
    from jaqmoo.experiment.accuracy import obtain_supernet, supernet_path
    from jaqmoo.experiment.spec import parse_spec

    t0 = time.perf_counter()
    record: dict[str, Any] = {"key": key, "host": socket.gethostname()}
    try:
        _set_threads(threads)
        spec = parse_spec(json.loads(json.dumps(spec_data)), source=source)
        splits = load_dataset(spec.dataset.name, root=spec.dataset.root, seed=spec.dataset.split_seed,
                              input_size=spec.dataset.input_size)
        # the sweep always sets accuracy.checkpoint or accuracy.cache_dir (hash-named files)
        ckpt = supernet_path(spec, splits, Path(spec.accuracy.checkpoint or "supernet.pt"))
        lock = _wait_for(ckpt.parent, ckpt.name + ".lock", f"supernet {key}")  # one trainer per file
        try:
            _, _, trained = obtain_supernet(spec, splits, ckpt, progress=False)
        finally:
            lock.release()
        record.update(status="done", checkpoint=str(ckpt), trained=trained)
    except Exception as exc:  # reported in the sweep summary, the other supernets go on
        record.update(_failure(exc))
    record["wall_seconds"] = time.perf_counter() - t0
    return record


def run_task(name: str, spec_data: dict, source: str, run_dir: str, threads: int | None = 1,
             strict: bool = False) -> dict[str, Any]:
    """Run one experiment (``run_experiment``, as ``jaqmoo run``) into ``run_dir``; ``strict``: a
    meaningless accuracy set-up fails the run (as ``jaqmoo run --strict``) instead of a warning.

    A run folder already holding results is resumed (a lost worker's run continues from its
    last generation); one whose marker says ``done`` is left alone.
    """
    from jaqmoo.experiment import run_experiment
    from jaqmoo.experiment.spec import parse_spec

    run_path = Path(run_dir)
    t0 = time.perf_counter()
    lock = _wait_for(run_path, RUN_LOCK, f"sweep run {name}")  # one writer per run folder
    try:
        previous = read_marker(run_path) or {}
        if previous.get("status") == "done":
            return previous | {"skipped": True}
        record: dict[str, Any] = {"run": name, "status": "running", "attempts": int(previous.get("attempts", 0)) + 1,
                                  "host": socket.gethostname(), "pid": os.getpid(),
                                  "started_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        write_marker(run_path, record)
        try:
            _set_threads(threads)
            spec = parse_spec(json.loads(json.dumps(spec_data)), source=source)
            result = run_experiment(spec, out=run_path, resume=True, progress=False, strict=strict)
            record.update(status="done", error=None, front_size=len(result.run.front),
                          evaluations=len(result.run.evaluations),
                          seconds={k: round(v, 3) for k, v in result.seconds.items()})
        except Exception as exc:  # recorded; the sweep goes on with the other runs
            record.update(_failure(exc))
        record["wall_seconds"] = time.perf_counter() - t0
        record["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        write_marker(run_path, record)
    finally:
        lock.release()
    return record
