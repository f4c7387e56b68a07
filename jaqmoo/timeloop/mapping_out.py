"""One mapping of a :class:`~jaqmoo.mapping.mapping.MappingBatch` -> Timeloop ``mapping:``
directives (the inverse of :func:`jaqmoo.mapping.timeloop_map.parse_mapping`).

Per storage level, outermost first: its temporal loops (every problem dim's factor, the
permutation innermost first), the spatial fan-out below it (X dims first in the permutation,
``split`` = how many, Timeloop's convention) and which tensors it keeps or bypasses. A dummy
level (a fan-out only) gets its spatial directive, unit temporal factors and bypasses all
three tensors, as Timeloop's front end writes it.

A dim split across both mesh axes below one level cannot be written (a Timeloop spatial
directive gives each dim one factor): that is an error naming the level and the dim.
"""

from __future__ import annotations

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.spec import TENSORS, Accelerator
from jaqmoo.mapping.mapping import DIM_INDEX, MappingBatch
from jaqmoo.timeloop.problem_out import check_dialect
from jaqmoo.workload import DIMS


def _factors(pairs: list[tuple[str, int]], dialect: str) -> str:
    return " ".join(f"{d}{n}" if dialect == "fork" else f"{d}={n}" for d, n in pairs)


def mapping_directives(batch: MappingBatch, accel: Accelerator, names: dict[str, str], i: int = 0,
                       dialect: str = "v0.4", label: str = "mapping") -> list[dict]:
    """The directives of mapping ``i`` of ``batch`` on ``accel``, dims in the problem's names
    (``names``: jaqmoo dim -> problem dim, as :func:`jaqmoo.timeloop.problem_out.dim_names`)."""
    check_dialect(dialect)
    present = [d for d in DIMS if d in names]
    for d in DIMS:
        if d not in names and (batch.temporal[i, :, DIM_INDEX[d]] * batch.spatial[i, :, DIM_INDEX[d]]).prod() != 1:
            raise JaqmooError(f"{label}: dim {d} has loops but the problem has no {d} dimension")
    keep_type = "datatype" if dialect == "fork" else "bypass"
    out: list[dict] = []
    for lvl, level in enumerate(accel.levels):
        perm = [DIMS[j] for j in batch.perm[i, lvl] if DIMS[j] in names]
        temporal = [(names[d], int(batch.temporal[i, lvl, DIM_INDEX[d]])) for d in present]
        out.append({"target": level.name, "type": "temporal", "factors": _factors(temporal, dialect),
                    "permutation": "".join(names[d] for d in perm)})
        fx, fy = accel.fanout(lvl)
        if fx * fy > 1:
            out.append(_spatial(batch, i, lvl, level.name, names, present, dialect, label))
        if level.is_dummy:
            out.append({"target": level.name, "type": keep_type, "keep": [], "bypass": list(TENSORS)})
        else:
            kept = [t for k, t in enumerate(TENSORS) if batch.keep[i, lvl, k]]
            out.append({"target": level.name, "type": keep_type, "keep": kept,
                        "bypass": [t for t in TENSORS if t not in kept]})
    return out


def _spatial(batch: MappingBatch, i: int, lvl: int, target: str, names: dict[str, str], present: list[str],
             dialect: str, label: str) -> dict:
    """The spatial directive below level ``lvl``: X dims (factor > 1) first, then the rest."""
    order = [DIMS[j] for j in (batch.spatial_perm[i, lvl] if batch.spatial_perm is not None else range(len(DIMS)))]
    order = [d for d in order if d in names]
    sx = {d: int(batch.spatial_x[i, lvl, DIM_INDEX[d]]) for d in present}
    sy = {d: int(batch.spatial_y[i, lvl, DIM_INDEX[d]]) for d in present}
    both = [d for d in present if sx[d] > 1 and sy[d] > 1]
    if both:
        raise JaqmooError(f"{label}: the fan-out below {target!r} splits {names[both[0]]} over both mesh axes "
                          f"(X {sx[both[0]]}, Y {sy[both[0]]}), which a Timeloop spatial directive cannot write")
    xs = [d for d in order if sx[d] > 1]
    rest = [d for d in order if d not in xs]
    pairs = [(names[d], sx[d] if d in xs else sy[d]) for d in xs + rest]
    return {"target": target, "type": "spatial", "factors": _factors(pairs, dialect),
            "permutation": "".join(names[d] for d in xs + rest), "split": len(xs)}


__all__ = ["mapping_directives"]
