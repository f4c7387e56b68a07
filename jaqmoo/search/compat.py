"""Resume compatibility: what may change between a run and its ``--resume``.

A resumed search must be the search that was started: the same search space, objectives,
constraints, seed, population and algorithm. Only termination (``search.generations``),
locations that do not change results (``output.dir``, ``dataset.root``, the spec file's own
path) and the run's label (``name``) may differ; run-time
options such as ``--threads`` are not part of the spec. :func:`check_resume` lists *every*
differing key in one error.
"""

from __future__ import annotations

from typing import Any

from jaqmoo.errors import JaqmooError

#: dotted spec keys that may differ on --resume
SPEC_MAY_CHANGE = ("search.generations", "output.dir", "dataset.root", "name", "source", "base_dir",
                   "mapping.cache_dir")
#: meta.json keys compared on --resume (search layer), and the settings that may change
META_KEYS = ("objectives", "constraints", "layer_names", "gene_names", "mapping_mode", "hardware_genes",
             "hardware_fixed", "space", "settings")
SETTINGS_MAY_CHANGE = ("generations",)


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists and scalars are leaves)."""
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def _norm(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _norm(x) for k, x in v.items()}
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def differences(old: dict, new: dict, may_change: tuple[str, ...] = ()) -> list[str]:
    """``key: stored -> new`` for every leaf that differs (keys in ``may_change`` ignored)."""
    a, b = flatten(_norm(old)), flatten(_norm(new))
    out = []
    for key in sorted(set(a) | set(b)):
        if any(key == m or key.startswith(m + ".") for m in may_change):
            continue
        if a.get(key) != b.get(key):  # an absent key equals null (a key added by a later version)
            out.append(f"{key}: {a.get(key)!r} -> {b.get(key)!r}")
    return out


def _refuse(run_dir: object, diffs: list[str], what: str) -> JaqmooError:
    listed = "\n  ".join(diffs)
    return JaqmooError(
        f"--resume: {run_dir} was started with a different {what}; these keys differ (stored -> now):\n  {listed}\n"
        f"A resumed search must be the same search: only search.generations (--generations) and run-time options "
        f"(--threads) may change. Resume with the original spec, or start a new run with --out")


def check_resume_spec(run_dir: object, stored: dict, new: dict) -> None:
    """Refuse a resume whose experiment spec differs in a key outside :data:`SPEC_MAY_CHANGE`."""
    diffs = differences(stored, new, SPEC_MAY_CHANGE)
    if diffs:
        raise _refuse(run_dir, diffs, "spec")


def check_resume_meta(run_dir: object, stored: dict, new: dict) -> None:
    """Refuse a resume whose search layout / settings (meta.json) differ (see the module doc)."""
    old = {k: stored.get(k) for k in META_KEYS if k in stored}
    now = {k: new.get(k) for k in META_KEYS if k in stored}
    may = tuple(f"settings.{k}" for k in SETTINGS_MAY_CHANGE) + ("settings.constraints",)  # listed once, above
    diffs = differences(old, now, may)
    if diffs:
        raise _refuse(run_dir, diffs, "search space or settings")
