"""Data-only files: JSON plus NumPy arrays in one ``.npz``, read without ever running code.

A *bundle* is an uncompressed or compressed NumPy ``.npz`` (a zip archive) holding named
numeric arrays and one ``__json__`` member, the UTF-8 JSON text of a plain-data header. It is
what jaqmoo keeps in run folders and caches (search checkpoints, fitted predictors, mapper
warm-up caches) instead of pickles:

- reading uses ``numpy.load(..., allow_pickle=False)``: an object array (the one way an
  ``.npz`` can carry a pickle) is refused, so a crafted file cannot execute anything;
- the zip format checks a CRC-32 per member, so damage is detected, and :func:`load_bundle`
  turns every failure (not a zip, bad CRC, object array, bad JSON, a member too large) into a
  :class:`DataFileError` naming the file and the fix;
- :func:`refuse_pickle` is how a loader answers a file of the old, pickled format: it is never
  opened; the message says how to rebuild it.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from jaqmoo.errors import JaqmooError
from jaqmoo.safe_write import atomic_write

JSON_MEMBER = "__json__"
#: no bundle may decompress to more than this (a zip bomb stops here, not in RAM).
MAX_MEMBER_BYTES = 1 << 31


class DataFileError(JaqmooError):
    """A data file is damaged, of another format or of an unsafe (pickled) kind."""


def plain_data(value: Any, nonfinite: Callable[[float], Any]) -> Any:
    """``value`` as JSON-able plain data: dict keys as strings, tuples and arrays as lists, numpy
    scalars as Python ones, and every non-finite float replaced by ``nonfinite(value)``."""
    if isinstance(value, dict):
        return {str(k): plain_data(v, nonfinite) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(v, nonfinite) for v in value]
    if isinstance(value, np.ndarray):
        return [plain_data(v, nonfinite) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return nonfinite(value)
    return value


def tag_floats(value: Any) -> Any:
    """``value`` (plain data) with every non-finite float as ``{"float": "nan"|"inf"|"-inf"}`` (JSON has none)."""
    return plain_data(value, lambda v: {"float": repr(v)})


def untag_floats(value: Any) -> Any:
    """The inverse of :func:`tag_floats`."""
    if isinstance(value, dict):
        if len(value) == 1 and value.get("float") in ("nan", "inf", "-inf"):
            return float(value["float"])
        return {k: untag_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [untag_floats(v) for v in value]
    return value


def bundle_bytes(header: dict, arrays: dict[str, np.ndarray] | None = None, compress: bool = False) -> bytes:
    """The bytes of a bundle of ``header`` (JSON-able) and numeric ``arrays``."""
    arrays = dict(arrays or {})
    for name, arr in arrays.items():
        if name == JSON_MEMBER or np.asarray(arr).dtype.hasobject:
            raise JaqmooError(f"internal: bundle member {name!r} must be a numeric array")
    text = json.dumps(header, allow_nan=False, separators=(",", ":"))
    arrays[JSON_MEMBER] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    buf = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buf, **arrays)
    return buf.getvalue()


def save_bundle(path: str | Path, header: dict, arrays: dict[str, np.ndarray] | None = None,
                compress: bool = False, what: str = "") -> Path:
    """Atomically write a bundle (see the module doc) to ``path``."""
    return atomic_write(path, bundle_bytes(header, arrays, compress), what)


def load_bundle_bytes(data: bytes, where: str, fix: str) -> tuple[dict, dict[str, np.ndarray]]:
    """Parse bundle bytes; ``where`` names the source and ``fix`` the remedy in error messages."""
    def bad(why: str) -> DataFileError:
        return DataFileError(f"{where}: {why}; {fix}")

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            total = sum(info.file_size for info in zf.infolist())
            if total > MAX_MEMBER_BYTES:
                raise bad(f"it would unpack to {total} bytes (at most {MAX_MEMBER_BYTES})")
        npz = np.load(io.BytesIO(data), allow_pickle=False)
        arrays = {name: npz[name] for name in npz.files}
    except DataFileError:
        raise
    except ValueError as exc:  # object arrays need allow_pickle: refused
        raise bad(f"not a plain-data file ({str(exc)[:120]})") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
        raise bad(f"damaged or not a jaqmoo data file ({type(exc).__name__}: {str(exc)[:120]})") from None
    raw = arrays.pop(JSON_MEMBER, None)
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise bad("no JSON header")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad(f"damaged JSON header ({str(exc)[:120]})") from None
    if not isinstance(header, dict):
        raise bad("the JSON header is not an object")
    return header, arrays


def load_bundle(path: str | Path, fix: str) -> tuple[dict, dict[str, np.ndarray]]:
    """The ``(header, arrays)`` of the bundle at ``path``; :class:`DataFileError` when damaged."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataFileError(f"{path}: cannot read it ({exc.strerror or exc}); {fix}") from None
    return load_bundle_bytes(data, str(path), fix)


def refuse_pickle(path: str | Path, rebuild: str) -> DataFileError:
    """The error for a file of the old pickled format at ``path`` (never opened); ``rebuild`` says how."""
    return DataFileError(
        f"{path} is in the old pickled format, which jaqmoo no longer reads (loading a pickle can run any "
        f"code put into it); it was not opened. {rebuild}")


class _TreeEncoder:
    """Dataclass trees to a JSON-able value plus arrays (see :func:`encode_tree`)."""

    def __init__(self, classes: dict[str, type]) -> None:
        self.names = {cls: name for name, cls in classes.items()}
        self.arrays: dict[str, np.ndarray] = {}

    def __call__(self, value: Any) -> Any:
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise JaqmooError(f"internal: cannot store an object array ({value.dtype})")
            key = f"a{len(self.arrays)}"
            self.arrays[key] = np.ascontiguousarray(value)
            return {"array": key}
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return value if np.isfinite(value) else {"float": repr(value)}
        if isinstance(value, tuple):
            return {"tuple": [self(v) for v in value]}
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, (set, frozenset)):
            return {"set": [self(v) for v in sorted(value, key=repr)]}
        if isinstance(value, dict):
            return {"items": [[self(k), self(v)] for k, v in value.items()]}
        name = self.names.get(type(value))
        if name is not None and dataclasses.is_dataclass(value):
            return {"object": name, "fields": {f.name: self(getattr(value, f.name))
                                               for f in dataclasses.fields(value) if f.init}}
        raise JaqmooError(f"internal: cannot store a {type(value).__name__} as data")


def encode_tree(value: Any, classes: dict[str, type]) -> tuple[Any, dict[str, np.ndarray]]:
    """A tree of plain values, NumPy arrays, tuples, sets, dicts and dataclasses named in
    ``classes`` (``{name: class}``) as ``(JSON-able value, arrays)``; :func:`decode_tree` inverts it."""
    enc = _TreeEncoder(classes)
    return enc(value), enc.arrays


def decode_tree(value: Any, arrays: dict[str, np.ndarray], classes: dict[str, type]) -> Any:
    """The tree :func:`encode_tree` encoded. Only the dataclasses in ``classes`` are built, through
    their constructors (so their own checks run); anything else is a :class:`DataFileError`."""
    def dec(v: Any, depth: int) -> Any:
        if depth > 64:
            raise DataFileError("the data nests too deeply")
        if v is None or isinstance(v, (bool, str, int, float)):
            return v
        if isinstance(v, list):
            return [dec(x, depth + 1) for x in v]
        if not isinstance(v, dict) or len(v) not in (1, 2):
            raise DataFileError(f"unexpected value {str(v)[:80]!r}")
        if "array" in v:
            if v["array"] not in arrays:
                raise DataFileError(f"missing array {str(v['array'])[:40]!r}")
            return arrays[v["array"]]
        if "float" in v:
            if v["float"] not in ("nan", "inf", "-inf"):
                raise DataFileError(f"bad float {str(v['float'])[:40]!r}")
            return float(v["float"])
        if "tuple" in v and isinstance(v["tuple"], list):
            return tuple(dec(x, depth + 1) for x in v["tuple"])
        if "set" in v and isinstance(v["set"], list):
            return {dec(x, depth + 1) for x in v["set"]}
        if "items" in v and isinstance(v["items"], list):
            if not all(isinstance(p, list) and len(p) == 2 for p in v["items"]):
                raise DataFileError("malformed mapping")
            return {dec(k, depth + 1): dec(x, depth + 1) for k, x in v["items"]}
        if "object" in v and isinstance(v.get("fields"), dict):
            cls = classes.get(v["object"]) if isinstance(v["object"], str) else None
            if cls is None:
                raise DataFileError(f"unexpected object type {str(v['object'])[:40]!r}")
            allowed = {f.name for f in dataclasses.fields(cls) if f.init}
            if not set(v["fields"]) <= allowed:
                raise DataFileError(f"unexpected fields for {v['object']}: {sorted(set(v['fields']) - allowed)[:5]}")
            try:
                return cls(**{k: dec(x, depth + 1) for k, x in v["fields"].items()})
            except (TypeError, ValueError) as exc:
                raise DataFileError(f"bad {v['object']} ({str(exc)[:120]})") from None
        raise DataFileError(f"unexpected value {str(v)[:80]!r}")

    try:
        return dec(value, 0)
    except TypeError as exc:  # e.g. an unhashable set member
        raise DataFileError(f"malformed data ({str(exc)[:120]})") from None
