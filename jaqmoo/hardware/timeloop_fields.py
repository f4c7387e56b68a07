"""Fields shared by Timeloop mapping directives and mapspace constraints.

``factors`` (``"R=1,P=16"``, ``"C1 M8"``, a list or a dict), ``permutation`` (dims innermost
first, a string or a list) and tensor lists (``keep`` / ``bypass``). Constraints (hardware)
and mappings (mapping) both read them, so they live below both.
"""

from __future__ import annotations

import re
from typing import Any

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.problem_yaml import DIM_ALIASES, jaqmoo_dim
from jaqmoo.hardware.spec import TENSORS

_FACTOR = re.compile(r"([A-Za-z_]\w*?)\s*=?\s*(\d+)$")


def parse_factors(spec: Any, label: str, where: str, aliases: dict[str, str] | None = None,
                  allow_zero: bool = False) -> dict[str, int]:
    """``"R=1,P=16"`` / ``"C1 M8"`` / ``["R=1", ...]`` / ``{R: 1}`` -> ``{jaqmoo dim: factor}``.

    ``allow_zero``: constraints may write ``R=0``, Timeloop's "whatever remains of R" (the
    mapper treats it as a free factor: the product rule then fixes it)."""
    if spec is None:
        return {}
    if isinstance(spec, dict):
        items = [f"{k}={v}" for k, v in spec.items()]
    elif isinstance(spec, list):
        items = [str(x) for x in spec]
    else:
        items = [x for x in re.split(r"[,\s]+", str(spec).strip()) if x]
    out: dict[str, int] = {}
    for item in items:
        m = _FACTOR.match(item.strip())
        if not m:
            raise JaqmooError(f"{label}: {where}: cannot read factor {item!r} (use e.g. 'P=16' or 'P16')")
        dim = jaqmoo_dim(m.group(1), label, where, aliases)
        value = int(m.group(2))
        if value < (0 if allow_zero else 1):
            raise JaqmooError(f"{label}: {where}: factor of {m.group(1)} must be >= 1")
        out[dim] = out.get(dim, 1) * value
    return out


def parse_permutation(spec: Any, label: str, where: str, aliases: dict[str, str] | None = None) -> list[str]:
    """A permutation (innermost first) -> jaqmoo dim names, duplicates rejected.

    A string is a list of dim names separated by spaces or commas, or single-letter dims
    written together; a space inside such a run (``"NPQR SCM"``, the fork's constraints) is
    for reading only."""
    if spec is None:
        return []
    table = DIM_ALIASES if aliases is None else aliases
    if isinstance(spec, list):
        names = [str(x).strip() for x in spec]
    else:
        names = []
        for token in str(spec).replace(",", " ").split():
            names += [token] if token in table else list(token)
    dims: list[str] = []
    for n in names:
        d = jaqmoo_dim(n, label, where, aliases)
        if d in dims:
            raise JaqmooError(f"{label}: {where}: dim {n!r} repeated in permutation")
        dims.append(d)
    return dims


def tensor_list(spec: Any, label: str, where: str) -> list[str]:
    """A tensor name or list of names -> canonical names (Weights, Inputs, Outputs)."""
    if spec is None:
        return []
    if isinstance(spec, str):
        spec = [spec]
    out = []
    for name in spec:
        canon = {t.lower(): t for t in TENSORS}.get(str(name).lower())
        if canon is None:
            raise JaqmooError(f"{label}: {where}: unknown tensor {name!r} (use {', '.join(TENSORS)})")
        out.append(canon)
    return out
