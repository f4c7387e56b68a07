"""The one strict reader for user-given YAML and numbers.

Everything a user hands jaqmoo (experiment and sweep specs, ``--bits-file`` files, Timeloop
architecture / problem / ERT / ART YAML, command-line numbers, ``stats.txt`` values) enters
through these functions, so the same rules hold everywhere:

- **YAML** (:func:`load_yaml_text`): safe loading only (no Python objects), at most
  :data:`MAX_YAML_BYTES` of text, and aliases (``*name``) may not expand the document beyond
  :data:`MAX_YAML_NODES` values: a few hundred bytes of nested aliases (a "billion laughs"
  bomb) stop here with an error instead of exhausting memory when something walks the data.
  Self-referencing aliases are refused too.
- **Numbers** (:func:`number`): booleans are not numbers; ``.nan``, ``.inf`` and numbers
  beyond a field's range are errors naming the field, never silently accepted (a NaN bound
  compares false with everything, so it would make every point "feasible"); integers must be
  integral. :data:`MAX_INT` caps every integer that sizes something (layer dimensions,
  buffer depths, populations) so nothing allocates terabytes from one typo.
- **Messages** (:func:`shown`): a value is shown in at most :data:`MAX_SHOWN` characters, built
  with :mod:`reprlib` so that showing a huge value never expands it first.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from jaqmoo.errors import JaqmooError
from jaqmoo.textfile import read_utf8

MAX_SHOWN = 200
MAX_YAML_BYTES = 32 * 1024 * 1024
MAX_YAML_NODES = 1_000_000
MAX_INT = 2**40
"""No integer read from a file or the command line may exceed this (about 10^12)."""

_REPR = reprlib.Repr()
_REPR.maxstring = MAX_SHOWN
_REPR.maxother = MAX_SHOWN
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 8
_REPR.maxlevel = 3


def shown(value: Any) -> str:
    """``repr(value)`` cut to at most :data:`MAX_SHOWN` characters (never expanding ``value`` first)."""
    text = _REPR.repr(value)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 3] + "..."


def _prefix(where: str) -> str:
    return f"{where}: " if where else ""


def number(value: Any, where: str, *, lo: float | None = None, hi: float | None = None, integer: bool = False,
           lo_open: bool = False, text: bool = False) -> Any:
    """``value`` checked as a finite number in ``[lo, hi]`` (``lo_open``: ``> lo``); an ``int`` when ``integer``.

    ``where`` names the field (and file) in the error. ``text`` also accepts numeric strings
    (Timeloop YAML writes ``"1e-9"``). Integers are capped at :data:`MAX_INT` unless ``hi`` says otherwise.
    """
    raw = value
    if isinstance(value, bool):
        raise JaqmooError(f"{where} must be a number (got a boolean {value!r})")
    if text and isinstance(value, str):
        try:
            value = float(value.strip()) if not value.strip().lstrip("+-").isdigit() else int(value.strip())
        except ValueError:
            raise JaqmooError(f"{where} must be a number (got {shown(raw)})") from None
    if isinstance(value, (np.integer, np.floating)):
        value = value.item()
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise JaqmooError(f"{where} must be a number (got {type(raw).__name__} {shown(raw)})")
    if isinstance(value, float) and not math.isfinite(value):
        raise JaqmooError(f"{where} must be a finite number (got {shown(raw)}); give a real value")
    if integer:
        if isinstance(value, float):
            if value != int(value):
                raise JaqmooError(f"{where} must be an integer (got {shown(raw)})")
            value = int(value)
        if hi is None and abs(value) > MAX_INT:
            raise JaqmooError(f"{where}: {shown(raw)} is too large; it must be at most {MAX_INT}")
    if (lo is not None and (value < lo or (lo_open and value == lo))) or (hi is not None and value > hi):
        low = "" if lo is None else f"{'>' if lo_open else '>='} {lo}"
        high = "" if hi is None else f"<= {hi}"
        raise JaqmooError(f"{where}: {shown(raw)} is out of range; it must be "
                          f"{' and '.join(x for x in (low, high) if x)}")
    return value


def count_values(data: Any, where: str = "", limit: int = MAX_YAML_NODES) -> int:
    """How many values ``data`` holds once every shared (aliased) part is expanded; a
    :class:`JaqmooError` past ``limit`` or for a structure that contains itself."""
    memo: dict[int, int] = {}
    active: set[int] = set()

    def size(obj: Any) -> int:
        if not isinstance(obj, (dict, list, tuple)):
            return 1
        key = id(obj)
        if key in memo:
            return memo[key]
        if key in active:
            raise JaqmooError(f"{_prefix(where)}the YAML refers to itself through an alias; remove the alias")
        active.add(key)
        items = list(obj.keys()) + list(obj.values()) if isinstance(obj, dict) else obj
        total = 1
        for item in items:
            total += size(item)
            if total > limit:
                raise JaqmooError(f"{_prefix(where)}the YAML expands to more than {limit} values (nested aliases "
                                  "*name repeat their anchors); write the values out or use fewer aliases")
        active.discard(key)
        memo[key] = total
        return total

    return size(data)


def yaml_error(exc: yaml.YAMLError, where: str) -> JaqmooError:
    """A :class:`JaqmooError` for a YAML syntax error, with its line and column."""
    mark = getattr(exc, "problem_mark", None)
    at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return JaqmooError(f"{_prefix(where)}not valid YAML (malformed YAML{at}): {str(problem)[:MAX_SHOWN]}; "
                       "fix the syntax")


def load_yaml_text(text: str, where: str, loader: type = yaml.SafeLoader) -> Any:
    """Parse ``text`` with ``loader`` (a ``SafeLoader``) under the limits of the module doc."""
    if not issubclass(loader, yaml.SafeLoader):
        raise JaqmooError("internal: only safe YAML loaders may read user files")
    if len(text) > MAX_YAML_BYTES:
        raise JaqmooError(f"{_prefix(where)}{len(text)} characters is too large for a YAML input "
                          f"(at most {MAX_YAML_BYTES}); give the right file")
    try:
        data = yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader (checked above)
    except yaml.YAMLError as exc:
        raise yaml_error(exc, where) from None
    except RecursionError:
        raise JaqmooError(f"{_prefix(where)}the YAML nests too deeply; give the right file") from None
    count_values(data, where)
    return data


def load_yaml_file(path: str | Path, what: str, loader: type = yaml.SafeLoader) -> Any:
    """Read a UTF-8 YAML file (``what`` says what it should be, e.g. "a YAML experiment spec")."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise JaqmooError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    if size > MAX_YAML_BYTES:
        raise JaqmooError(f"{path}: {size} bytes is too large for {what} (at most {MAX_YAML_BYTES})")
    return load_yaml_text(read_utf8(path, what), str(path), loader)


def contained_path(value: str, where: str, *, absolute_ok: bool, fix: str,
                   leaving: str = "the output outside its folder") -> Path:
    """``value`` as a path that cannot climb out of the folder it is put in: no ``..`` part, not
    empty or ``.``, and (unless ``absolute_ok``) not absolute. The rule for run and sweep names
    (the folder ``runs/<name>``) and for ``output.dir`` without an explicit ``--out``."""
    path = Path(value)
    bad = (".." in path.parts or not value.strip() or path == Path(".")
           or (path.is_absolute() and not absolute_ok) or "\x00" in value)
    if bad:
        raise JaqmooError(f"{_prefix(where)}{shown(value)} climbs out of its folder through '..' (or is an absolute "
                          f"or empty path) and would put {leaving}; {fix}")
    return path


@contextmanager
def malformed_input(where: str, what: str) -> Iterator[None]:
    """Reading a nested user file of ``what`` kind at ``where``: a missing field or one of the
    wrong type deep inside (a list where a mapping belongs...) that the reader did not check by
    name becomes a :class:`JaqmooError` naming the file, never a bare ``TypeError`` traceback."""
    try:
        yield
    except JaqmooError:
        raise
    except (TypeError, KeyError, AttributeError, ValueError, IndexError, ZeroDivisionError, OverflowError) as exc:
        detail = f"{type(exc).__name__}: {str(exc)[:MAX_SHOWN]}"
        raise JaqmooError(f"{_prefix(where)}malformed {what}: a field is missing or has the wrong type ({detail}); "
                          "compare it with a file that works") from None
