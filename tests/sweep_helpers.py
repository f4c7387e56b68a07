"""Module-level task functions for the executor tests (spawned workers import them by name)."""

from __future__ import annotations

import os
from pathlib import Path


def crash_once(flag: str, value: int) -> dict:
    """The first call kills its worker process (a lost worker); later calls succeed."""
    path = Path(flag)
    if not path.exists():
        path.write_text("crashed")
        os._exit(3)
    return {"status": "done", "value": value}


def record(status: str, value: int) -> dict:
    return {"status": status, "value": value, "error": None if status == "done" else "boom"}


def always_crash(counter: str) -> dict:
    """Kills its worker process every time (counting the tries in ``counter``)."""
    path = Path(counter)
    with open(path, "a") as fh:
        fh.write("x")
    os._exit(9)


def slow_record(status: str, value: int, seconds: float) -> dict:
    """:func:`record` after ``seconds`` (so that it is running when another task kills the pool)."""
    import time

    time.sleep(seconds)
    return record(status, value)
