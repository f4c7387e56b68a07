"""Writing files so that a full, read-only or forbidden disk never leaves garbage behind.

Every file jaqmoo writes into a run, sweep or cache folder goes through this module:

- :func:`atomic_write` (and :func:`atomic_write_text`, :func:`atomic_write_with` for writers
  that want a path, such as pandas or matplotlib) writes a temporary file beside the target,
  fsyncs it and renames it over the target. A symbolic link at the target is *replaced*, never
  followed: ``rename(2)`` swaps the directory entry, so a planted ``front.csv -> ~/.bashrc``
  is not written through. Whatever goes wrong (``ENOSPC``, ``EROFS``, ``EACCES``, a kill of
  the writer's thread by an exception) the temporary file is removed and the old file stays.
- :func:`append_durable` appends a block of text and fsyncs it; when the write fails the file
  is cut back to its previous length, so a failed append never leaves a torn line. It refuses
  to append through a symbolic link.
- :class:`DiskWriteError` is what both raise for an operating-system refusal: one
  :class:`~jaqmoo.errors.JaqmooError` naming the file, the cause in words and the fix, instead
  of a bare ``OSError`` traceback. Callers that know what is already saved (the search loop:
  "generations 1-4 are stored, ``--resume`` continues") catch it and add that.
- :func:`csv_cell` / :func:`escape_formulas` neutralise text cells a spreadsheet would run as a
  formula (``=``, ``+``, ``-``, ``@``, tab or carriage return first), as OWASP recommends:
  a leading apostrophe. Numbers are never touched.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jaqmoo.errors import JaqmooError

#: errno values that mean "the disk or the folder refuses the write" (not a jaqmoo bug).
DISK_ERRNOS = {
    errno.ENOSPC: "the disk is full (no space left on device)",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is too large for the file system",
    errno.EIO: "an input/output error (a failing disk or a lost network mount)",
}


class DiskWriteError(JaqmooError):
    """The operating system refused a write (full, read-only, forbidden); nothing partial was left."""

    def __init__(self, path: str | Path, cause: OSError, what: str = "") -> None:
        self.path = Path(path)
        self.errno = cause.errno
        why = DISK_ERRNOS.get(cause.errno or 0, cause.strerror or str(cause))
        fix = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space or raise the quota",
               errno.EROFS: "make the folder writable or write elsewhere (--out)",
               errno.EACCES: "make the folder writable for you or write elsewhere (--out)",
               errno.EPERM: "make the folder writable for you or write elsewhere (--out)"}.get(
                   cause.errno or 0, "check the disk")
        super().__init__(f"cannot write {what + ' ' if what else ''}{self.path}: {why}; {fix}. "
                         "No partial file was left behind")


def is_disk_error(exc: BaseException) -> bool:
    """True for an ``OSError`` that :class:`DiskWriteError` describes (full, read-only, forbidden)."""
    return isinstance(exc, OSError) and exc.errno in DISK_ERRNOS


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write_with(path: str | Path, write: Callable[[Path], Any], what: str = "") -> Path:
    """Call ``write(tmp)`` to fill a temporary file, fsync it and rename it over ``path``.

    The temporary file is removed on any failure; a disk refusal becomes :class:`DiskWriteError`.
    """
    path = Path(path)
    tmp = _temp_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)  # a leftover of a killed writer with our pid
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if is_disk_error(exc):
            raise DiskWriteError(path, exc, what) from None  # type: ignore[arg-type]
        raise
    return path


def atomic_write(path: str | Path, data: bytes, what: str = "") -> Path:
    """Replace ``path`` by ``data`` atomically (see the module doc)."""
    def write(tmp: Path) -> None:
        with open(tmp, "xb") as fh:
            fh.write(data)

    return atomic_write_with(path, write, what)


def atomic_write_text(path: str | Path, text: str, what: str = "") -> Path:
    """:func:`atomic_write` of UTF-8 ``text``."""
    return atomic_write(path, text.encode("utf-8"), what)


def append_durable(path: str | Path, text: str, what: str = "") -> None:
    """Append ``text`` to ``path`` and fsync; on failure the file is cut back to its old length."""
    path = Path(path)
    data = memoryview(text.encode("utf-8"))
    try:  # O_NOFOLLOW: never append through a planted symbolic link
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise JaqmooError(f"{path} is a symbolic link; jaqmoo appends only to files it wrote there: remove "
                              "the link (nothing was written through it)") from None
        if is_disk_error(exc):
            raise DiskWriteError(path, exc, what) from None
        raise
    try:
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            while data:  # unbuffered: nothing is left in a buffer to fail again at close
                data = data[os.write(fd, data):]
            os.fsync(fd)
        except BaseException as exc:
            try:
                os.ftruncate(fd, start)
            except OSError:
                pass
            if is_disk_error(exc):
                raise DiskWriteError(path, exc, what) from None  # type: ignore[arg-type]
            raise
    finally:
        os.close(fd)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """``value`` with a leading apostrophe when it is text a spreadsheet would evaluate."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def escape_formulas(df: Any) -> Any:
    """A copy of DataFrame ``df`` whose text cells (and column names) pass through :func:`csv_cell`."""
    out = df.copy()
    for col in out.columns:
        if getattr(out[col].dtype, "kind", "O") not in "biufcmM":  # object, str or string columns
            out[col] = out[col].map(csv_cell)
    out.columns = [csv_cell(c) for c in out.columns]
    return out


def write_csv(df: Any, path: str | Path, what: str = "") -> Path:
    """Write DataFrame ``df`` as CSV atomically, text cells escaped (:func:`escape_formulas`)."""
    safe = escape_formulas(df)
    return atomic_write_with(path, lambda tmp: safe.to_csv(tmp, index=False), what)


def write_parquet(df: Any, path: str | Path, what: str = "") -> Path:
    """Write DataFrame ``df`` as Parquet atomically (typed cells: nothing to escape)."""
    return atomic_write_with(path, lambda tmp: df.to_parquet(tmp, index=False), what)


def save_figure(fig: Any, path: str | Path, dpi: int = 110, what: str = "a plot") -> Path:
    """``fig.savefig`` atomically (the format from ``path``'s suffix, PNG by default)."""
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    return atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=fmt), what)
