"""Advisory file locks (``fcntl.flock``) for sweep folders, run folders and shared checkpoints.

A lock is held by an open file descriptor, so the kernel releases it when the holding
process dies, even by SIGKILL: a killed sweep never leaves a stale lock behind. The lock
file records who holds it (pid, host, time, purpose) for the error message of the next
process that finds it taken.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from jaqmoo.errors import JaqmooError


class LockBusy(JaqmooError):
    """The lock is held by another process."""


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another process"
    if not info:
        return "another process"
    return (f"pid {info.get('pid')} on {info.get('host')} ({info.get('purpose', '')}, since "
            f"{info.get('since', '?')})")


@contextmanager
def file_lock(path: str | Path, purpose: str, blocking: bool = False) -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` (created if needed) for the ``with`` block.

    Non-blocking by default: a lock held elsewhere raises :class:`LockBusy` naming the holder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            raise LockBusy(f"{path} is locked by {_holder(path)}") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "purpose": purpose,
                "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
