"""A pymoo algorithm's state as plain data (JSON + arrays), and back, without pickle.

A checkpoint must let a killed search continue exactly as if it had never stopped, yet
nothing read back from a run folder may run code. So the algorithm is not pickled: its
*state* is copied out as data and, on resume, written into a freshly built algorithm of the
same configuration (the spec and ``meta.json`` fix the configuration; resume refuses a
changed one). The state is every attribute, on the algorithm and on the pymoo / jaqmoo
objects it holds (survival, its normalisation, the evaluator, ...), whose value is data:

- numbers, strings, booleans, ``None`` (floats ``inf`` / ``nan`` included), lists, tuples,
  string-keyed dicts and sets of those;
- NumPy arrays and scalars of numeric or boolean dtype;
- a :class:`numpy.random.Generator` as its bit generator's state (the random stream goes on
  exactly where it stopped);
- a pymoo ``Population`` as per-field stacked arrays of its individuals (decision variables,
  objectives, constraints, violation) plus their ``data`` dicts (rank, crowding, niche...).

Configuration objects (operators, selections) and functions are not state: the fresh
algorithm already has them. A state-holding object that pymoo creates lazily during the run
(SPEA2's ``HyperplaneNormalization``) is recorded by class name and, on restore, created only
when its class is in :data:`LAZY_COMPONENTS` (no other class is ever built from a file). What is skipped on purpose: the problem (rebuilt by the caller),
the termination (set for the requested number of generations), display/output/callback
objects and pymoo's ``history``. :func:`capture` and :func:`restore` are inverse on this
state; ``tests/test_safety_checkpoint.py`` checks that a resumed run of each algorithm gives
the front of an uninterrupted one.
"""

from __future__ import annotations

import math
import re
import types
from typing import Any

import numpy as np
from pymoo.algorithms.moo.nsga3 import HyperplaneNormalization
from pymoo.core.individual import Individual
from pymoo.core.population import Population

from jaqmoo.errors import JaqmooError

#: attributes that are not state (rebuilt, replaced or display-only)
SKIPPED = frozenset({"problem", "termination", "display", "output", "callback", "history", "archive",
                     "generator", "state"})
#: bit generators a stored random state may name
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$|^_[A-Za-z0-9][A-Za-z0-9_]*$")
MAX_DEPTH = 4
#: state holders pymoo creates during a run, which a freshly built algorithm does not have yet
LAZY_COMPONENTS: dict[str, type] = {"HyperplaneNormalization": HyperplaneNormalization}


class StateError(JaqmooError):
    """A stored algorithm state does not fit the algorithm being resumed (or is malformed)."""


class _Skip(Exception):
    """Not data: the attribute is configuration or code and is not stored."""


class _Encoder:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def array(self, key: str, value: np.ndarray) -> dict:
        if value.dtype.hasobject or value.dtype.kind not in "biufc?":
            raise _Skip
        self.arrays[key] = np.ascontiguousarray(value)
        return {"a": key}

    def plain(self, value: Any, key: str) -> Any:
        """JSON form of ``value`` (arrays go to ``self.arrays`` under ``key``...)."""
        if isinstance(value, (np.ndarray, np.generic)) and not isinstance(value, Population):
            return {**self.array(key, np.asarray(value)), **({"scalar": True} if isinstance(value, np.generic) else {})}
        if value is None or isinstance(value, (bool, str)):
            return {"v": value}
        if isinstance(value, int):
            return {"v": value}
        if isinstance(value, float):
            return {"v": value} if math.isfinite(value) else {"f": str(value)}
        if isinstance(value, Population):
            return self.population(value, key)
        if isinstance(value, np.random.Generator):
            state = value.bit_generator.state
            if state.get("bit_generator") not in BIT_GENERATORS:
                raise _Skip
            return {"rng": _json_state(state)}
        if isinstance(value, (list, tuple)):
            return {"list" if isinstance(value, list) else "tuple":
                    [self.plain(v, f"{key}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, (set, frozenset)) and all(isinstance(v, str) for v in value):
            return {"set": sorted(value)}
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {"dict": {k: self.plain(v, f"{key}[{k}]") for k, v in value.items()}}
        raise _Skip

    def population(self, pop: Population, key: str) -> dict:
        inds = [ind for ind in pop]
        fields: dict[str, Any] = {}
        names = sorted({n for ind in inds for n in vars(ind)} - {"data", "config", "evaluated"})
        for name in names:
            vals = [getattr(ind, name, None) for ind in inds]
            if all(isinstance(v, np.ndarray) for v in vals) and len({(v.shape, v.dtype) for v in vals}) == 1:
                fields[name] = self.array(f"{key}.{name}", np.stack(vals) if vals else np.zeros((0,)))
            else:
                fields[name] = {"each": [self.plain(v, f"{key}.{name}[{i}]") for i, v in enumerate(vals)]}
        return {"pop": len(inds), "fields": fields,
                "data": [self.plain(ind.data, f"{key}.data[{i}]") for i, ind in enumerate(inds)],
                "evaluated": [sorted(ind.evaluated) for ind in inds]}


def _json_state(state: Any) -> Any:
    if isinstance(state, dict):
        return {str(k): _json_state(v) for k, v in state.items()}
    if isinstance(state, np.ndarray):
        return {"uint_array": state.astype(np.uint64).tolist(), "dtype": str(state.dtype)}
    if isinstance(state, np.integer):
        return int(state)
    return state


def _unjson_state(state: Any) -> Any:
    if isinstance(state, dict):
        if set(state) == {"uint_array", "dtype"}:
            return np.asarray(state["uint_array"], dtype=np.uint64).astype(np.dtype(str(state["dtype"])))
        return {k: _unjson_state(v) for k, v in state.items()}
    return state


def _is_component(value: Any) -> bool:
    mod = type(value).__module__ or ""
    return (mod.startswith(("pymoo.", "jaqmoo.")) and hasattr(value, "__dict__")
            and not isinstance(value, (types.FunctionType, types.MethodType, type)))


def capture(algorithm: Any) -> tuple[dict, dict[str, np.ndarray]]:
    """``(header, arrays)``: the algorithm's state as data (see the module doc)."""
    enc = _Encoder()
    state: dict[str, Any] = {}
    seen: set[int] = set()

    def walk(obj: Any, prefix: str, depth: int) -> None:
        seen.add(id(obj))
        for name, value in sorted(vars(obj).items()):
            if name in SKIPPED or not _NAME.match(name):
                continue
            path = f"{prefix}{name}"
            try:
                state[path] = enc.plain(value, path)
                continue
            except _Skip:
                pass
            if _is_component(value) and depth < MAX_DEPTH and id(value) not in seen:
                state[path] = {"component": type(value).__name__}
                walk(value, path + ".", depth + 1)

    walk(algorithm, "", 0)
    return {"class": type(algorithm).__name__, "state": state}, enc.arrays


class _Decoder:
    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays

    def array(self, key: Any) -> np.ndarray:
        if not isinstance(key, str) or key not in self.arrays:
            raise StateError(f"the stored state refers to a missing array {str(key)[:80]!r}")
        return self.arrays[key]

    def plain(self, enc: Any) -> Any:
        if not isinstance(enc, dict) or len(enc) == 0:
            raise StateError(f"malformed stored value {str(enc)[:80]!r}")
        if "v" in enc:
            v = enc["v"]
            if v is not None and not isinstance(v, (bool, int, float, str)):
                raise StateError(f"malformed stored value {str(v)[:80]!r}")
            return v
        if "f" in enc:
            if enc["f"] not in ("inf", "-inf", "nan"):
                raise StateError(f"malformed stored float {str(enc['f'])[:40]!r}")
            return float(enc["f"])
        if "a" in enc:
            arr = self.array(enc["a"])
            return arr[()] if enc.get("scalar") else arr.copy()
        if "rng" in enc:
            state = _unjson_state(enc["rng"])
            name = state.get("bit_generator") if isinstance(state, dict) else None
            if name not in BIT_GENERATORS:
                raise StateError(f"unknown random generator {str(name)[:40]!r}")
            bitgen = getattr(np.random, name)()
            try:
                bitgen.state = state
            except (TypeError, ValueError, KeyError) as exc:
                raise StateError(f"malformed random generator state ({exc})") from None
            return np.random.Generator(bitgen)
        if "list" in enc or "tuple" in enc:
            items = enc.get("list", enc.get("tuple"))
            if not isinstance(items, list):
                raise StateError("malformed stored list")
            out = [self.plain(v) for v in items]
            return out if "list" in enc else tuple(out)
        if "set" in enc:
            if not isinstance(enc["set"], list) or not all(isinstance(v, str) for v in enc["set"]):
                raise StateError("malformed stored set")
            return set(enc["set"])
        if "dict" in enc:
            if not isinstance(enc["dict"], dict):
                raise StateError("malformed stored dict")
            return {str(k): self.plain(v) for k, v in enc["dict"].items()}
        if "pop" in enc:
            return self.population(enc)
        raise StateError(f"malformed stored value {str(enc)[:80]!r}")

    def population(self, enc: dict) -> Population:
        n = enc.get("pop")
        fields, data, evaluated = enc.get("fields"), enc.get("data"), enc.get("evaluated")
        if (not isinstance(n, int) or n < 0 or not isinstance(fields, dict) or not isinstance(data, list)
                or not isinstance(evaluated, list) or len(data) != n or len(evaluated) != n):
            raise StateError("malformed stored population")
        inds = [Individual() for _ in range(n)]
        for name, field_enc in fields.items():
            if not _NAME.match(str(name)):
                raise StateError(f"bad individual field name {str(name)[:40]!r}")
            if isinstance(field_enc, dict) and "each" in field_enc:
                if not isinstance(field_enc["each"], list) or len(field_enc["each"]) != n:
                    raise StateError(f"malformed population field {name!r}")
                values = [self.plain(v) for v in field_enc["each"]]
            else:
                stacked = self.plain(field_enc)
                if not isinstance(stacked, np.ndarray) or len(stacked) != n:
                    raise StateError(f"population field {name!r} does not hold {n} rows")
                values = [row.copy() for row in stacked]
            for ind, value in zip(inds, values, strict=True):
                setattr(ind, name, value)
        for ind, d, ev in zip(inds, data, evaluated, strict=True):
            values = self.plain(d)
            if not isinstance(values, dict) or not isinstance(ev, list):
                raise StateError("malformed stored individual data")
            ind.data = values
            ind.evaluated = {str(e) for e in ev}
        return Population(inds)


def restore(algorithm: Any, header: dict, arrays: dict[str, np.ndarray]) -> Any:
    """Write the state of ``header``/``arrays`` (from :func:`capture`) into ``algorithm``.

    ``algorithm`` must be freshly built with the configuration of the stored one and set up
    (``setup(problem, ...)``); a state of another algorithm class or layout is a
    :class:`StateError`.
    """
    if header.get("class") != type(algorithm).__name__:
        raise StateError(f"the stored state is of a {str(header.get('class'))[:40]} algorithm, "
                         f"not {type(algorithm).__name__}")
    state = header.get("state")
    if not isinstance(state, dict):
        raise StateError("no algorithm state stored")
    dec = _Decoder(arrays)
    for path, enc in sorted(state.items(), key=lambda kv: str(kv[0]).count(".")):  # holders before their fields
        parts = str(path).split(".")
        if len(parts) > MAX_DEPTH + 1 or not all(_NAME.match(p) and p not in SKIPPED for p in parts):
            raise StateError(f"bad state attribute {str(path)[:80]!r}")
        obj = algorithm
        for part in parts[:-1]:
            obj = getattr(obj, part, None)
            if obj is None or not _is_component(obj):
                raise StateError(f"the stored state has {str(path)[:80]!r}, which this algorithm lacks")
        if isinstance(enc, dict) and "component" in enc:
            _ensure_component(obj, parts[-1], enc["component"], str(path))
            continue
        if callable(getattr(type(obj), parts[-1], None)):
            raise StateError(f"bad state attribute {str(path)[:80]!r} (a method)")
        value = dec.plain(enc)
        current = getattr(obj, parts[-1], None)
        if current is not None and value is not None and _kind(current) != _kind(value):
            raise StateError(f"the stored {str(path)[:80]!r} is a {_kind(value)}, this algorithm holds a {_kind(current)}")
        setattr(obj, parts[-1], value)
    _check_populations(algorithm)
    return algorithm


def _kind(value: Any) -> str:
    """The family a restored value must share with the fresh algorithm's (numbers stay numbers...)."""
    if isinstance(value, Population):
        return "population"
    if isinstance(value, np.ndarray):
        return "array"
    if isinstance(value, (bool, np.bool_)):
        return "boolean"
    if isinstance(value, (int, float, np.number)):
        return "number"
    if isinstance(value, (list, tuple)):
        return "sequence"
    return type(value).__name__


def _check_populations(algorithm: Any) -> None:
    """The restored counters are counters, and every restored population fits the problem
    (genes and objectives per individual)."""
    n_iter = getattr(algorithm, "n_iter", None)
    if not isinstance(n_iter, int) or isinstance(n_iter, bool) or n_iter < 1:
        raise StateError(f"the stored generation counter n_iter is {str(n_iter)[:40]!r}, not a generation")
    problem = getattr(algorithm, "problem", None)
    if problem is None:
        return
    for name in ("pop", "off", "opt"):
        pop = getattr(algorithm, name, None)
        if not isinstance(pop, Population) or len(pop) == 0:
            continue
        X, F = pop.get("X"), pop.get("F")
        if (getattr(X, "ndim", 0) != 2 or X.shape[1] != problem.n_var or X.dtype.hasobject
                or (F is not None and getattr(F, "ndim", 0) == 2 and F.shape[1] != problem.n_obj)):
            raise StateError(f"the stored {name} does not fit this search ({problem.n_var} genes, "
                             f"{problem.n_obj} objectives)")


def _ensure_component(obj: Any, name: str, class_name: Any, path: str) -> None:
    """``obj.name`` is a component of class ``class_name``: kept when present, else created if allowed."""
    current = getattr(obj, name, None)
    if current is not None:
        if type(current).__name__ != class_name:
            raise StateError(f"the stored state has a {str(class_name)[:40]} at {path[:80]!r}, this algorithm a "
                             f"{type(current).__name__}")
        return
    cls = LAZY_COMPONENTS.get(class_name) if isinstance(class_name, str) else None
    if cls is None:
        raise StateError(f"the stored state has a {str(class_name)[:40]} at {path[:80]!r}, which this algorithm lacks")
    setattr(obj, name, cls.__new__(cls))  # its fields follow from the stored state
