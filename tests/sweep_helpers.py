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
