"""The per-point breakdown a run computed, kept in its folder (``breakdown.json``).

``jaqmoo run`` details every front point and baseline (per-layer energy per level and tensor,
cycles, loop nests: :mod:`jaqmoo.reporting.breakdown`) with its own evaluator while it writes
the report. At the end it stores those details here, so that ``jaqmoo report RUN`` does not
rebuild the model, the accelerator and the mapper to compute them again (29 s on a quickstart
run before; a few seconds now, docs/benchmarks/quickstart.md).

The file is keyed by the run's content: a SHA-256 over jaqmoo's version and the bytes of
``meta.json``, ``evaluations.jsonl`` and ``rescored.json``. When any of them changes (a resumed
run, a repaired one, another jaqmoo), the key no longer matches and the stored details are not
used: the report recomputes them, never shows stale ones. A damaged file is ignored the same way.
The file is plain JSON (nothing in it is executed).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from jaqmoo import __version__
from jaqmoo.safe_write import atomic_write_text
from jaqmoo.search.store import EVALUATIONS, META

BREAKDOWN_JSON = "breakdown.json"
#: the files whose bytes key the stored breakdown (in this order)
CONTENT_FILES = (META, EVALUATIONS, "rescored.json")


def content_key(run_dir: str | Path) -> str:
    """SHA-256 of jaqmoo's version and the run's content files (see the module doc)."""
    h = hashlib.sha256(f"jaqmoo {__version__}\n".encode())
    for name in CONTENT_FILES:
        path = Path(run_dir) / name
        h.update(f"{name}\n".encode())
        if path.is_file():
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        h.update(b"\n--\n")
    return h.hexdigest()


def read_breakdown(run_dir: str | Path) -> tuple[dict[str, dict], dict[str, dict]] | None:
    """``(details by genome string, layer shapes)`` stored for this very content of ``run_dir``;
    None when there is no file, it is damaged, or the run changed since it was written."""
    path = Path(run_dir) / BREAKDOWN_JSON
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != content_key(run_dir):
        return None
    details, shapes = data.get("details"), data.get("shapes")
    if not isinstance(details, dict) or not all(isinstance(v, dict) for v in details.values()):
        return None
    return {str(k): v for k, v in details.items()}, (shapes if isinstance(shapes, dict) else {})


def write_breakdown(run_dir: str | Path, details: dict[str, dict], shapes: dict[str, Any] | None) -> Path:
    """Store ``details`` (genome string -> detail dict) and the layer ``shapes`` for the run's
    current content (:func:`content_key`)."""
    data = {"key": content_key(run_dir), "jaqmoo": __version__, "shapes": shapes or {}, "details": details}
    return atomic_write_text(Path(run_dir) / BREAKDOWN_JSON, json.dumps(data, allow_nan=False, separators=(",", ":")),
                             "the run's stored breakdown")


__all__ = ["BREAKDOWN_JSON", "CONTENT_FILES", "content_key", "read_breakdown", "write_breakdown"]
