"""Checks of plain YAML values, shared by the experiment and sweep spec readers.

Each raises a :class:`~jaqmoo.errors.JaqmooError` naming the file, the field and the fix.

The checks are also the one definition of the spec's value rules: inside :func:`recording_rules`
each check notes the rule it applies to its key (JSON Schema keywords: ``minimum``, ``enum``...),
so ``jaqmoo spec --schema`` (:mod:`jaqmoo.commands.reference`) writes exactly the ranges and
choices the reader enforces.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import fields
from typing import Any

from jaqmoo.errors import JaqmooError, did_you_mean
from jaqmoo.quant.policy import SUPPORTED_BITS, parse_bits_spec
from jaqmoo.strict import MAX_INT, number, shown

_RULES: ContextVar[dict[str, dict] | None] = ContextVar("jaqmoo_spec_rules", default=None)


@contextmanager
def recording_rules() -> Iterator[dict[str, dict]]:
    """Collect, while a spec is read inside this block, each checked key's rule as JSON Schema
    keywords: ``{"accuracy.val_images": {"type": "integer", "minimum": 10, ...}, ...}``; a list
    element's rule (``search.seed_bits[0]``) goes under its list's ``items``."""
    token = _RULES.set({})
    try:
        yield _RULES.get()
    finally:
        _RULES.reset(token)


def _note(where: str, rule: dict) -> None:
    rules = _RULES.get()
    if rules is None:
        return
    m = re.fullmatch(r"(.*?)\[\d+\]", where)
    if m:
        rules.setdefault(m.group(1), {"type": "array"}).setdefault("items", {}).update(rule)
    else:
        rules.setdefault(where, {}).update(rule)


def check_keys(data: Mapping, allowed: list[str], where: str) -> None:
    """Raise for keys of ``data`` not in ``allowed`` (suggesting the closest one)."""
    for key in data:
        if key not in allowed:
            raise JaqmooError(
                f"{where}: unknown key {shown(key)}; {did_you_mean(str(key)[:200], allowed)}allowed keys: {', '.join(allowed)}"
            )


def section(data: Any, where: str) -> dict:
    """A spec section as a dict ({} when absent); anything but a mapping is an error."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise JaqmooError(f"{where}: expected a mapping of keys (got {type(data).__name__} {shown(data)})")
    return data


def type_name(t: type | tuple) -> str:
    """``int or float`` for an ``isinstance`` type (tuple)."""
    return " or ".join(x.__name__ for x in (t if isinstance(t, tuple) else (t,)))


def typed(value: Any, t: type | tuple, where: str) -> Any:
    """``value`` checked to be of type ``t`` (booleans are not numbers; ints widen to float)."""
    if isinstance(value, bool) and bool not in (t if isinstance(t, tuple) else (t,)):
        raise JaqmooError(f"{where}: expected {type_name(t)}, got a boolean {value!r}")
    if isinstance(value, float) and t in (float, (int, float)):
        number(value, where)  # .nan / .inf are not numbers a spec may hold
    if t is float and isinstance(value, int):
        return float(value)
    if not isinstance(value, t):
        raise JaqmooError(f"{where}: expected {type_name(t)}, got {type(value).__name__} {shown(value)}")
    return value


def int_range(value: Any, where: str, lo: int | None, hi: int | None, src: str) -> int:
    """An integer in ``lo..hi`` (``lo`` None: open; ``hi`` None: :data:`~jaqmoo.strict.MAX_INT`, since
    nothing a spec sizes may be astronomically large)."""
    hi = MAX_INT if hi is None else hi
    _note(where, {"type": "integer", "maximum": hi} | ({} if lo is None else {"minimum": lo}))
    value = typed(value, int, f"{src}: {where}")
    if (lo is not None and value < lo) or value > hi:
        rng = f"in {lo}..{hi}"
        raise JaqmooError(f"{src}: {where}: {value} is out of range; it must be {rng}")
    return value


def float_range(value: Any, where: str, lo: float, hi: float | None, src: str, lo_open: bool = False) -> float:
    """A number ``>= lo`` (``> lo`` with ``lo_open``) and ``<= hi``."""
    _note(where, {"type": "number", ("exclusiveMinimum" if lo_open else "minimum"): lo}
          | ({} if hi is None else {"maximum": hi}))
    value = typed(value, float, f"{src}: {where}")
    if value < lo or (lo_open and value == lo) or (hi is not None and value > hi):
        bound = f"{'>' if lo_open else '>='} {lo}" + (f" and <= {hi}" if hi is not None else "")
        raise JaqmooError(f"{src}: {where}: {value} is out of range; it must be {bound}")
    return value


def choice(value: Any, where: str, allowed: tuple[str, ...], src: str) -> str:
    """One of ``allowed`` (suggesting the closest name otherwise)."""
    _note(where, {"type": "string", "enum": list(allowed)})
    value = typed(value, str, f"{src}: {where}")
    if value not in allowed:
        raise JaqmooError(
            f"{src}: {where}: unknown value {shown(value)}; {did_you_mean(value[:200], list(allowed))}choose one of: {', '.join(allowed)}"
        )
    return value


def bits_list(value: Any, where: str, src: str) -> tuple[int, ...]:
    """A non-empty list of distinct supported bit-widths, sorted."""
    _note(where, {"type": "array", "minItems": 1, "uniqueItems": True,
                  "items": {"type": "integer", "enum": list(SUPPORTED_BITS)}})
    if not isinstance(value, list) or not value:
        raise JaqmooError(f"{src}: {where}: expected a non-empty list of bit-widths such as [2, 4, 6, 8]")
    out = []
    for i, v in enumerate(value):
        b = typed(v, int, f"{src}: {where}[{i}]")
        if b not in SUPPORTED_BITS:
            raise JaqmooError(f"{src}: {where}[{i}]: {b} bits is not supported; use values in 2..8")
        out.append(b)
    if len(set(out)) != len(out):
        raise JaqmooError(f"{src}: {where}: duplicate bit-widths in {value}")
    return tuple(sorted(out))


def bits_pair(value: Any, where: str, src: str) -> tuple[int, int]:
    """``B`` or ``W/A`` bits of a fixed layer."""
    w, a = parse_bits_spec(str(value), f"{src}: {where}")
    if w not in SUPPORTED_BITS or a not in SUPPORTED_BITS:
        raise JaqmooError(f"{src}: {where}: fixed layers need integer bits in 2..8 (got {shown(value)})")
    return (w, a)


def optional_path(value: Any, where: str, src: str) -> str | None:
    """A path string, or None when absent."""
    if value is None:
        return None
    return str(typed(value, str, f"{src}: {where}"))


def field_names(cls: type) -> list[str]:
    """The field names of a dataclass (the keys its spec section allows)."""
    return [f.name for f in fields(cls)]
