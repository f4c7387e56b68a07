"""Timeloop ``problem:`` sections -> jaqmoo :class:`~jaqmoo.workload.Layer`.

Timeloop names its convolution dims freely (``M`` for output channels in the CNN
exercises, ``K`` in the conv1d ones); :data:`DIM_ALIASES` maps them onto jaqmoo's
``N, G, K, C, P, Q, R, S``. Strides and dilations are read from the Inputs projection
(the coefficient of P and R on the axis they share, likewise Q and S).
"""

from __future__ import annotations

from typing import Any

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.yaml_io import as_number, require
from jaqmoo.workload import DIMS, Layer

DIM_ALIASES: dict[str, str] = {d: d for d in DIMS} | {"M": "K"}

_TENSOR_ALIASES = {
    "Weights": {"weights", "weight", "filter", "filters", "w"},
    "Inputs": {"inputs", "input", "ifmap", "ifmaps", "activations", "i"},
    "Outputs": {"outputs", "output", "ofmap", "ofmaps", "psum", "psums", "o"},
}

_FORBIDDEN = {"Weights": {"N", "P", "Q"}, "Inputs": {"K"}, "Outputs": {"C", "R", "S"}}


DEPTHWISE_ALIASES: dict[str, str] = DIM_ALIASES | {"C": "G"}
"""Timeloop's depthwise shape has no output-channel dim: its C indexes all three tensors, i.e.
it is jaqmoo's group dim G (with K = C = 1)."""


def jaqmoo_dim(name: str, label: str, where: str, aliases: dict[str, str] | None = None) -> str:
    """The jaqmoo dim for a Timeloop dim name (``M`` -> ``K``; ``aliases`` overrides the table)."""
    table = DIM_ALIASES if aliases is None else aliases
    key = str(name).strip()
    if key not in table:
        raise JaqmooError(f"{label}: {where}: unknown problem dimension {key!r}; jaqmoo supports "
                          f"{', '.join(sorted(table))}")
    return table[key]


def _projection_terms(projection: Any, label: str, where: str) -> list[list[tuple[str, Any]]]:
    """Normalize a projection into axes of ``(dim, coefficient)`` terms."""
    if not isinstance(projection, list):
        raise JaqmooError(f"{label}: {where}.projection must be a list")
    axes = []
    for axis in projection:
        terms = []
        if isinstance(axis, str):
            axis = [[axis]]
        for term in axis:
            if isinstance(term, str):
                term = [term]
            if not isinstance(term, list) or not term:
                raise JaqmooError(f"{label}: {where}.projection has a malformed term {term!r}")
            terms.append((str(term[0]), term[1] if len(term) > 1 else 1))
        axes.append(terms)
    return axes


def _coef_value(coef: Any, instance: dict, defaults: dict, label: str) -> int:
    if isinstance(coef, int | float):
        return int(coef)
    text = str(coef)
    if text in instance:
        return as_number(instance[text], label, f"problem.instance.{text}", int)
    if text in defaults:
        return as_number(defaults[text], label, f"problem.shape.coefficients.{text}", int)
    try:
        return int(float(text))
    except ValueError as exc:
        raise JaqmooError(f"{label}: coefficient {text!r} has no value in problem.instance or "
                          f"problem.shape.coefficients") from exc


def _classify(spaces: list[dict], label: str) -> dict[str, dict]:
    named: dict[str, dict] = {}
    for sp in spaces:
        name = str(sp.get("name", "")).lower()
        for tensor, aliases in _TENSOR_ALIASES.items():
            if name in aliases:
                named[tensor] = sp
    if len(named) == 3:
        return named
    if len(spaces) != 3:
        raise JaqmooError(f"{label}: problem.shape.data_spaces must hold exactly 3 tensors "
                          f"(weights, inputs, outputs); got {len(spaces)}")
    rw = [sp for sp in spaces if sp.get("read_write")]
    if len(rw) != 1:
        raise JaqmooError(f"{label}: cannot tell which data space is which; name them Weights, "
                          f"Inputs and Outputs (or mark exactly one read_write: true)")
    rest = [sp for sp in spaces if not sp.get("read_write")]
    has_sum = [any(len(axis) > 1 for axis in _projection_terms(sp.get("projection"), label, "data_space"))
               for sp in rest]
    if has_sum.count(True) != 1:
        raise JaqmooError(f"{label}: cannot tell the Inputs data space from the Weights; name them")
    inputs = rest[has_sum.index(True)]
    weights = rest[has_sum.index(False)]
    return {"Weights": weights, "Inputs": inputs, "Outputs": rw[0]}


def normalize_shape(shape: Any) -> Any:
    """The v0.3 spelling of a problem shape (``data-spaces``, ``read-write``, as the Klhufek et
    al. fork writes it) -> the v0.4 one (``data_spaces``, ``read_write``); other keys unchanged."""
    if not isinstance(shape, dict):
        return shape
    out = dict(shape)
    if "data_spaces" not in out and "data-spaces" in out:
        out["data_spaces"] = out.pop("data-spaces")
    spaces = out.get("data_spaces")
    if isinstance(spaces, list):
        out["data_spaces"] = [
            {("read_write" if k == "read-write" else k): v for k, v in sp.items()} if isinstance(sp, dict) else sp
            for sp in spaces]
    return out


def problem_bits(problem: Any, label: str) -> tuple[int, int, int] | None:
    """The fork's bit-width extension of ``problem.instance`` -> (weight, input, output) bits.

    ``commonBitwidth: B`` puts every tensor at B bits; ``bitwidths: {Inputs, Weights,
    Outputs}`` sets them per tensor (a tensor it leaves out takes ``commonBitwidth``, else the
    levels' own word bits: then the whole extension is incomplete and an error). Neither key:
    None, every tensor at each level's own datawidth (plain Timeloop).
    """
    instance = problem.get("instance") if isinstance(problem, dict) else None
    if not isinstance(instance, dict):
        return None
    common = instance.get("commonBitwidth")
    per = instance.get("bitwidths")
    if common is None and per is None:
        return None
    where = "problem.instance"
    common = None if common is None else as_number(common, label, f"{where}.commonBitwidth", int)
    if per is not None and not isinstance(per, dict):
        raise JaqmooError(f"{label}: {where}.bitwidths must be a mapping {{Inputs: a, Weights: w, Outputs: o}}")
    named = {}
    for key, value in (per or {}).items():
        tensor = next((t for t, names in _TENSOR_ALIASES.items() if str(key).lower() in names), None)
        if tensor is None:
            raise JaqmooError(f"{label}: {where}.bitwidths.{key}: unknown tensor (use Inputs, Weights, Outputs)")
        named[tensor] = as_number(value, label, f"{where}.bitwidths.{key}", int)
    out = []
    for tensor in ("Weights", "Inputs", "Outputs"):
        bits = named.get(tensor, common)
        if bits is None:
            raise JaqmooError(f"{label}: {where}.bitwidths has no {tensor} entry and there is no "
                              f"commonBitwidth; give all three tensors or add commonBitwidth")
        if bits < 1:
            raise JaqmooError(f"{label}: {where}: {tensor} bits must be >= 1 (got {bits})")
        out.append(bits)
    return tuple(out)


def parse_problem(problem: Any, label: str, name: str | None = None) -> Layer:
    """A Timeloop ``problem:`` dict (v0.3 or v0.4 layout) -> :class:`Layer`."""
    return parse_problem_and_aliases(problem, label, name)[0]


def _is_depthwise(spaces: list, dims: list, label: str) -> bool:
    """Outputs indexed by C and no output-channel dim: Timeloop's depthwise shape."""
    names = {str(d).strip() for d in dims}
    if names & {"M", "K", "G"}:
        return False
    for sp in spaces:
        if sp.get("read_write"):
            axes = _projection_terms(sp.get("projection"), label, "data_space")
            return any(term[0] == "C" for axis in axes for term in axis)
    return False


def parse_problem_and_aliases(problem: Any, label: str, name: str | None = None) -> tuple[Layer, dict[str, str]]:
    """Like :func:`parse_problem`, also returning the dim-name table its mappings must use."""
    if not isinstance(problem, dict):
        raise JaqmooError(f"{label}: 'problem' must be a mapping with 'shape' and 'instance'")
    shape = normalize_shape(require(problem, "shape", label, "problem"))
    instance = require(problem, "instance", label, "problem")
    if not isinstance(instance, dict):
        raise JaqmooError(f"{label}: problem.instance must be a mapping of dimension sizes")
    dims = require(shape, "dimensions", label, "problem.shape")
    spaces = require(shape, "data_spaces", label, "problem.shape")
    aliases = DEPTHWISE_ALIASES if _is_depthwise(list(spaces), list(dims), label) else DIM_ALIASES
    defaults = {}
    for c in shape.get("coefficients") or []:
        if isinstance(c, dict) and "name" in c:
            defaults[str(c["name"])] = c.get("default", 1)

    sizes = dict.fromkeys(DIMS, 1)
    for d in dims:
        jd = jaqmoo_dim(d, label, "problem.shape.dimensions", aliases)
        value = require(instance, str(d), label, "problem.instance")
        sizes[jd] = as_number(value, label, f"problem.instance.{d}", int)

    tensors = _classify(list(spaces), label)
    strides = {"stride_h": 1, "dilation_h": 1, "stride_w": 1, "dilation_w": 1}
    for tensor, sp in tensors.items():
        axes = _projection_terms(sp.get("projection"), label, f"problem.shape.data_spaces[{sp.get('name')}]")
        used = {jaqmoo_dim(t[0], label, "projection", aliases) for axis in axes for t in axis}
        bad = used & _FORBIDDEN[tensor]
        if bad:
            raise JaqmooError(f"{label}: data space {sp.get('name')!r} ({tensor}) uses {sorted(bad)}; "
                              f"only convolution-shaped problems are supported")
        if tensor != "Inputs":
            continue
        for axis in axes:
            for dim, coef in axis:
                jd = jaqmoo_dim(dim, label, "projection", aliases)
                value = _coef_value(coef, instance, defaults, label)
                if jd == "P":
                    strides["stride_h"] = value
                elif jd == "R":
                    strides["dilation_h"] = value
                elif jd == "Q":
                    strides["stride_w"] = value
                elif jd == "S":
                    strides["dilation_w"] = value
    if sizes["G"] > 1:
        kind = "depthwise" if sizes["K"] == 1 and sizes["C"] == 1 else "grouped"
    else:
        kind = "conv"
    layer_name = name or str(shape.get("name") or "problem")
    return Layer(layer_name, kind, **sizes, **strides), aliases
