"""One writer per folder: an OS-level lock file with the holder's pid and host.

Usage::

    from jaqmoo.locking import FolderLock, LockHeld

    with FolderLock(run_dir):                 # run_dir/run.lock, held until the block exits
        ...                                   # write the run folder
    with FolderLock(sweep_dir, "sweep.lock", what="sweep"):
        ...

A second process (or a second :class:`FolderLock` on the same file in the same process) gets
:class:`LockHeld`, a :class:`~jaqmoo.errors.JaqmooError` whose message names the holder's pid,
host, start time and command line.

How it works: the lock is ``fcntl.flock`` on ``<folder>/<name>`` (POSIX). The kernel drops
the lock when the holding process exits for any reason (SIGKILL included), so a lock whose
holder is gone is *stale* and is simply taken over: the next :meth:`FolderLock.acquire`
obtains it, finds the previous holder's record still in the file and reports it in
:attr:`FolderLock.took_over`. A clean release removes the file. Where ``fcntl`` is missing
(Windows) the lock is an exclusively created file; a stale one is detected by its recorded pid
no longer running on this host and taken over.

On network file systems ``flock`` is only as reliable as the file system's lock support
(NFSv4 and Lustre honour it; some FUSE mounts do not).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from jaqmoo.errors import JaqmooError

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

RUN_LOCK = "run.lock"


class LockHeld(JaqmooError):
    """The folder is locked by another live writer; ``holder`` is its record (pid, host...)."""

    def __init__(self, message: str, holder: dict[str, Any]) -> None:
        super().__init__(message)
        self.holder = holder


def holder_record(what: str) -> dict[str, Any]:
    """What a lock file says about its holder: pid, host, start time, command line."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "what": what,
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "command": " ".join(sys.argv)}


def read_holder(path: str | Path) -> dict[str, Any] | None:
    """The holder record in the lock file ``path`` (``None``: no file, empty or unreadable)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8") or "null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def describe_holder(holder: dict[str, Any] | None) -> str:
    """``pid 123 on host h (started ..., command: ...)`` or a note that the record is missing."""
    if not holder:
        return "a process that left no holder record"
    text = f"pid {holder.get('pid')} on host {holder.get('host')}"
    extra = [f"started {holder['started']}" if holder.get("started") else "",
             f"command: {holder['command']}" if holder.get("command") else ""]
    extra = [e for e in extra if e]
    return text + (f" ({', '.join(extra)})" if extra else "")


class FolderLock:
    """An exclusive, non-blocking lock on ``folder/name`` (see the module doc).

    ``what`` names what the lock protects in messages ("run", "sweep"). Re-entrant use of one
    object is an error; use one :class:`FolderLock` per writer.
    """

    def __init__(self, folder: str | Path, name: str = RUN_LOCK, what: str = "run") -> None:
        self.folder = Path(folder)
        self.path = self.folder / name
        self.what = what
        self.took_over: dict[str, Any] | None = None  # the stale holder's record, if one was taken over
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    # ------------------------------------------------------------------ acquire / release
    def acquire(self) -> FolderLock:
        """Take the lock now or raise :class:`LockHeld` naming the live holder."""
        if self._fd is not None:
            raise JaqmooError(f"{self.path}: this lock is already held by this object")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JaqmooError(f"{self.folder}: cannot create the {self.what} folder ({exc.strerror}); "
                              "choose a writable location") from None
        if fcntl is None:  # pragma: no cover - Windows
            self._acquire_exclusive_file()
        else:
            self._acquire_flock()
        return self

    def _busy(self, holder: dict[str, Any] | None) -> LockHeld:
        return LockHeld(
            f"{self.folder} is in use: another {self.what} is writing it ({describe_holder(holder)}; lock file "
            f"{self.path}). Wait for it to finish or stop it, or write to another folder with --out",
            holder or {})

    def _acquire_flock(self) -> None:
        assert fcntl is not None
        while True:
            try:  # O_NOFOLLOW: a planted symlink is refused, its target never written
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
            except OSError as exc:
                if self.path.is_symlink():
                    raise JaqmooError(f"{self.path} is a symbolic link, not a lock file jaqmoo wrote; remove it "
                                      "(nothing was written through it)") from None
                raise JaqmooError(f"{self.path}: cannot create the lock file ({exc.strerror}); "
                                  f"the {self.what} folder must be writable") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise self._busy(read_holder(self.path)) from None
            # the file may have been removed (a release) between our open and flock: retry on the new one
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = read_holder(self.path)
        self.took_over = previous if previous else None
        self._fd = fd
        self._write_holder()

    def _acquire_exclusive_file(self) -> None:  # pragma: no cover - Windows
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = read_holder(self.path)
                stale = (holder is not None and holder.get("host") == socket.gethostname()
                         and not pid_alive(int(holder.get("pid", -1))))
                if not stale:
                    raise self._busy(holder) from None
                self.took_over = holder
                self.path.unlink(missing_ok=True)
                continue
            self._fd = fd
            self._write_holder()
            return
        raise self._busy(read_holder(self.path))

    def _write_holder(self) -> None:
        assert self._fd is not None
        data = json.dumps(holder_record(self.what)).encode()
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.write(self._fd, data)
        os.fsync(self._fd)

    def release(self) -> None:
        """Drop the lock and remove the lock file (a no-op when not held)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # before unlocking: a waiter then retries on a new file
        finally:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:  # a forgotten lock does not outlive its object
        if getattr(self, "_fd", None) is not None:
            self.release()


def wait_for_lock(lock: FolderLock, poll_seconds: float = 1.0) -> FolderLock:
    """Acquire ``lock``, waiting (polling every ``poll_seconds``) while another live process holds it."""
    while True:
        try:
            return lock.acquire()
        except LockHeld:
            time.sleep(poll_seconds)


def assert_unlocked(folder: str | Path, name: str = RUN_LOCK, what: str = "run") -> None:
    """Raise :class:`LockHeld` if a live writer holds ``folder/name`` (the lock is not kept)."""
    if not Path(folder).is_dir():
        return
    with FolderLock(folder, name, what):
        pass
