"""A jaqmoo :class:`~jaqmoo.workload.Layer` -> a Timeloop ``problem:`` section (the inverse of
:func:`jaqmoo.hardware.problem_yaml.parse_problem_and_aliases` and
:func:`~jaqmoo.hardware.problem_yaml.problem_bits`).

The shape is Timeloop's ``CNN-Layer`` (dims ``C M R S N P Q``, strides and dilations as the
coefficients ``Wstride``/``Hstride``/``Wdilation``/``Hdilation``), as in Timeloop's exercises
and the Klhufek et al. fork's scenarios; a grouped or depthwise layer adds the group dim ``G``
to all three tensors. jaqmoo's ``K`` is Timeloop's ``M``.

Dialects (:data:`DIALECTS`): ``v0.4`` writes ``data_spaces``/``read_write`` and no bit-widths
(Timeloop v0.4 stores every tensor at each level's word bits); ``fork`` writes the fork's
``data-spaces``/``read-write`` and its ``bitwidths: {Inputs, Weights, Outputs}`` extension of
``problem.instance``.
"""

from __future__ import annotations

from jaqmoo.errors import JaqmooError
from jaqmoo.workload import Layer

DIALECTS: tuple[str, ...] = ("v0.4", "fork")
"""Timeloop input dialects the exporter writes: Timeloop v0.4, and the Klhufek et al.
mixed-precision fork (v0.3 architecture keys, per-tensor ``bitwidths``)."""

COEFFICIENTS = ("Wstride", "Hstride", "Wdilation", "Hdilation")


def check_dialect(dialect: str) -> str:
    """``dialect`` if it is one of :data:`DIALECTS`, else a :class:`JaqmooError` naming them."""
    if dialect not in DIALECTS:
        raise JaqmooError(f"--dialect {dialect!r}: use one of {', '.join(DIALECTS)} (v0.4: Timeloop 0.4; fork: the "
                          "Klhufek et al. mixed-precision fork with per-tensor bitwidths)")
    return dialect


def dim_names(layer: Layer) -> dict[str, str]:
    """jaqmoo dim -> the problem's dim name, for the dims the written problem has (``G`` only
    for a grouped or depthwise layer)."""
    names = {"C": "C", "K": "M", "R": "R", "S": "S", "N": "N", "P": "P", "Q": "Q"}
    return {"G": "G", **names} if layer.G > 1 else names


def problem_dict(layer: Layer, bits: tuple[int, int, int] | None, dialect: str = "v0.4") -> dict:
    """The ``problem:`` section of ``layer`` (``bits``: weight, input, output; written under the
    fork dialect only, where ``None`` means the levels' own word bits and writes none)."""
    check_dialect(dialect)
    g = ["G"] if layer.G > 1 else []
    spaces = [
        {"name": "Weights", "projection": [[[d]] for d in g + ["C", "M", "R", "S"]]},
        {"name": "Inputs", "projection": [[["N"]]] + [[[d]] for d in g] + [[["C"]], [["R", "Wdilation"], ["P", "Wstride"]],
                                                                         [["S", "Hdilation"], ["Q", "Hstride"]]]},
        {"name": "Outputs", "projection": [[[d]] for d in ["N"] + g + ["M", "Q", "P"]]},
    ]
    rw = "read-write" if dialect == "fork" else "read_write"
    for space in spaces:
        space[rw] = space["name"] == "Outputs"
    instance: dict = {d: int(getattr(layer, j)) for j, d in dim_names(layer).items()}
    instance.update(Wstride=layer.stride_h, Hstride=layer.stride_w, Wdilation=layer.dilation_h,
                    Hdilation=layer.dilation_w)
    if dialect == "fork" and bits is not None:
        w, i, o = (int(b) for b in bits)
        instance["bitwidths"] = {"Inputs": i, "Weights": w, "Outputs": o}
    shape = {"name": layer.name, "dimensions": g + ["C", "M", "R", "S", "N", "P", "Q"],
             "coefficients": [{"name": c, "default": 1} for c in COEFFICIENTS],
             ("data-spaces" if dialect == "fork" else "data_spaces"): spaces}
    out: dict = {"shape": shape, "instance": instance}
    return out if dialect == "fork" else {"version": "0.4", **out}


__all__ = ["COEFFICIENTS", "DIALECTS", "check_dialect", "dim_names", "problem_dict"]
