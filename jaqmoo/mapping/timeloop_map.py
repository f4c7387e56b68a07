"""Timeloop mappings (``mapping:`` directives, ``*.map.yaml``, ``*.map.txt``) -> MappingBatch.

Directive fields: ``target`` (a level name), ``type`` (``temporal``, ``spatial``,
``bypass``/``datatype``/``dataspace``), ``factors`` (``"R=1,P=1"``, ``"C1 M8 R1"``, a list
or a dict), ``permutation`` (dims innermost first, a string or a list), ``split``
(spatial: the first ``split`` permutation dims go to mesh X, the rest to Y), ``keep`` and
``bypass`` (tensor names). Dims not given a factor get 1; a dim whose factors do not reach
the layer's bound takes the remainder at the outermost level (when divisible).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.spec import TENSOR_INDEX, TENSORS, Accelerator
from jaqmoo.hardware.timeloop_fields import parse_factors, parse_permutation, tensor_list
from jaqmoo.mapping.mapping import DIM_INDEX, N_DIMS, MappingBatch
from jaqmoo.workload import DIMS, Layer


def parse_mapping(directives: Any, accel: Accelerator, layer: Layer, label: str,
                  aliases: dict[str, str] | None = None) -> MappingBatch:
    """Timeloop mapping directives -> a :class:`MappingBatch` of one mapping.

    ``aliases`` maps the problem's dim names onto jaqmoo's (default: ``M`` -> ``K``; a
    depthwise problem's ``C`` is ``G``, see :func:`jaqmoo.hardware.problem_yaml.parse_problem_and_aliases`).
    """
    if isinstance(directives, dict) and "mapping" in directives:
        directives = directives["mapping"]
    if not isinstance(directives, list) or not directives:
        raise JaqmooError(f"{label}: mapping must be a non-empty list of directives")
    n_lvl = accel.n_levels
    temporal = np.ones((n_lvl, N_DIMS), dtype=np.int64)
    sx = np.ones((n_lvl, N_DIMS), dtype=np.int64)
    sy = np.ones((n_lvl, N_DIMS), dtype=np.int64)
    perm = np.tile(np.arange(N_DIMS), (n_lvl, 1))
    keep = np.array([[not lvl.is_dummy] * 3 for lvl in accel.levels], dtype=bool)
    spatial_perm = np.tile(np.arange(N_DIMS), (n_lvl, 1))
    given_outer = set()
    for i, d in enumerate(directives):
        where = f"mapping[{i}]"
        if not isinstance(d, dict):
            raise JaqmooError(f"{label}: {where} must be a mapping")
        target = d.get("target")
        if target is None:
            raise JaqmooError(f"{label}: missing required field '{where}.target'; add it")
        lvl = accel.level_index(str(target))
        kind = str(d.get("type", "temporal")).lower()
        if kind in ("bypass", "datatype", "dataspace"):
            for t in tensor_list(d.get("keep"), label, where + ".keep"):
                keep[lvl, TENSOR_INDEX[t]] = True
            for t in tensor_list(d.get("bypass"), label, where + ".bypass"):
                keep[lvl, TENSOR_INDEX[t]] = False
            continue
        factors = parse_factors(d.get("factors"), label, where + ".factors", aliases)
        order = parse_permutation(d.get("permutation"), label, where + ".permutation", aliases)
        if kind == "temporal":
            for dim, f in factors.items():
                temporal[lvl, DIM_INDEX[dim]] = f
                if lvl == 0:
                    given_outer.add(dim)
            full = order + [x for x in DIMS if x not in order]
            perm[lvl] = [DIM_INDEX[x] for x in full]
        elif kind == "spatial":
            fx, fy = accel.fanout(lvl)
            full = order + [x for x in DIMS if x not in order]
            split = d.get("split")
            if split is None:
                split = len(full) if (fx > 1 or fy == 1) else 0
            split = int(split)
            for pos, dim in enumerate(full):
                f = factors.get(dim, 1)
                (sx if pos < split else sy)[lvl, DIM_INDEX[dim]] = f
            spatial_perm[lvl] = [DIM_INDEX[x] for x in full]
        else:
            raise JaqmooError(f"{label}: {where}.type {kind!r} is not temporal, spatial or bypass")

    bounds = {d: getattr(layer, d) for d in DIMS}
    prod = (temporal * sx * sy).prod(axis=0)
    for j, dim in enumerate(DIMS):
        if prod[j] == bounds[dim]:
            continue
        if bounds[dim] % prod[j] == 0 and dim not in given_outer:
            temporal[0, j] *= bounds[dim] // prod[j]
            continue
        raise JaqmooError(f"{label}: mapping factors of {dim} multiply to {int(prod[j])}, "
                          f"but the problem has {dim}={bounds[dim]}")
    batch = MappingBatch(temporal[None], sx[None], sy[None], perm[None], keep[None], spatial_perm[None])
    batch.check(layer)
    return batch


_LEVEL_LINE = re.compile(r"^(\S+)\s*\[(.*)\]\s*$")
_LOOP_LINE = re.compile(r"for\s+(\w+)\s+in\s+\[0:(\d+)\)\s*(\(Spatial-([XY])\))?")


def parse_map_txt(text: str, accel: Accelerator, layer: Layer, label: str = "<map.txt>",
                  aliases: dict[str, str] | None = None) -> MappingBatch:
    """Timeloop's printed loop nest (``*.map.txt``) -> :class:`MappingBatch` of one mapping.

    The listing shows each level's stored tensors (``Level [ Weights:.. Inputs:.. ]``, absent
    tensors are bypassed) followed by its loops, outermost first.
    """
    directives: list[dict] = []
    current: str | None = None
    loops: list[tuple[str, int, str | None]] = []

    def flush() -> None:
        if current is None:
            return
        temporal = [(d, n) for d, n, sp in loops if sp is None]
        if temporal:
            directives.append({"target": current, "type": "temporal",
                               "factors": " ".join(f"{d}={n}" for d, n in temporal),
                               "permutation": [d for d, _ in reversed(temporal)]})
        spatial = [(d, n, sp) for d, n, sp in loops if sp is not None]
        if spatial:
            xs = [(d, n) for d, n, sp in spatial if sp == "X"]
            ys = [(d, n) for d, n, sp in spatial if sp == "Y"]
            # listed outermost first: innermost-first order is the reverse (X loops nest in Y)
            directives.append({"target": current, "type": "spatial",
                               "factors": " ".join(f"{d}={n}" for d, n in xs + ys),
                               "permutation": [d for d, _ in reversed(xs)] + [d for d, _ in reversed(ys)],
                               "split": len(xs)})

    for raw in text.splitlines():
        line = raw.strip().lstrip("|").strip()
        m = _LEVEL_LINE.match(raw.strip())
        if m and not raw.strip().startswith("|"):
            flush()
            current, loops = m.group(1), []
            held = [t.split(":")[0] for t in m.group(2).split()]
            lvl = accel.level_index(current)
            if not accel.levels[lvl].is_dummy:
                directives.append({"target": current, "type": "bypass",
                                   "keep": [t for t in TENSORS if t in held],
                                   "bypass": [t for t in TENSORS if t not in held]})
            continue
        lm = _LOOP_LINE.search(line)
        if lm and current is not None:
            loops.append((lm.group(1), int(lm.group(2)), lm.group(4)))
    flush()
    if not directives:
        raise JaqmooError(f"{label}: no levels found in the mapping listing")
    return parse_mapping(directives, accel, layer, label, aliases)


def mapping_directives(batch: MappingBatch, i: int, accel: Accelerator) -> list[dict[str, Any]]:
    """Mapping ``i`` of ``batch`` as Timeloop mapping directives, the inverse of
    :func:`parse_mapping` (which reads them back into the same factors, loop orders and
    keep/bypass): per level a ``temporal`` directive (every dim's factor, permutation innermost
    first), a ``spatial`` one where the fan-out below it splits a dim (mesh X dims first, ``split``
    of them), and a ``bypass`` one naming the tensors it keeps and bypasses. Plain data (YAML-ready)."""
    out: list[dict[str, Any]] = []
    for lvl, level in enumerate(accel.levels):
        temporal = batch.temporal[i, lvl]
        out.append({"target": level.name, "type": "temporal",
                    "factors": " ".join(f"{d}={int(temporal[j])}" for j, d in enumerate(DIMS)),
                    "permutation": "".join(DIMS[int(j)] for j in batch.perm[i, lvl])})
        sx, sy = batch.spatial_x[i, lvl], batch.spatial_y[i, lvl]
        if (sx > 1).any() or (sy > 1).any():
            both = [DIMS[j] for j in range(N_DIMS) if sx[j] > 1 and sy[j] > 1]
            if both:
                raise JaqmooError(f"level {level.name}: dim {both[0]} is split over both mesh X and Y, which a "
                                  "Timeloop spatial directive cannot write")
            given = next((c.permutation for c in accel.constraints
                          if c.target == level.name and c.type == "spatial" and c.permutation), ())
            order = ([int(j) for j in batch.spatial_perm[i, lvl]] if batch.spatial_perm is not None else
                     [DIM_INDEX[d] for d in given] + [j for j in range(N_DIMS) if DIMS[j] not in given])
            xs, ys = [j for j in order if sx[j] > 1], [j for j in order if sy[j] > 1 and sx[j] == 1]
            rest = [j for j in order if j not in xs and j not in ys]
            out.append({"target": level.name, "type": "spatial",
                        "factors": " ".join(f"{DIMS[j]}={int(sx[j] * sy[j])}" for j in xs + ys),
                        "permutation": "".join(DIMS[j] for j in xs + ys + rest), "split": len(xs)})
        if not level.is_dummy:
            keep = batch.keep[i, lvl]
            out.append({"target": level.name, "type": "bypass", "keep": [t for t, k in zip(TENSORS, keep, strict=True) if k],
                        "bypass": [t for t, k in zip(TENSORS, keep, strict=True) if not k]})
    return out
