"""Per (layer, accelerator) constants of the analysis, shared by both backends: the live
dimensions, the tensor projections, the translation hashes and the spatial loop orders."""

from __future__ import annotations

import functools

import numpy as np

from jaqmoo.hardware.spec import Accelerator
from jaqmoo.mapping import tensors as tz
from jaqmoo.mapping.mapping import N_DIMS
from jaqmoo.workload import DIMS, Layer

# Odd 64-bit multipliers that hash a translation vector (one entry per tensor axis) into one
# integer; translations are compared through these hashes (wrap-around arithmetic).
AXIS_HASH = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                       0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD], dtype=np.uint64).view(np.int64)


@functools.lru_cache(maxsize=64)
def geometry_of(layer: Layer, accel: Accelerator) -> Geometry:
    """The (cached, read-only) :class:`Geometry` of ``layer`` on ``accel``."""
    return Geometry(layer, accel)


class Geometry:
    """Per (layer, accelerator) constants of the analysis (read-only once built)."""

    def __init__(self, layer: Layer, accel: Accelerator) -> None:
        self.layer = layer
        self.n_lvl = accel.n_levels
        self.dummy = np.array([lvl.is_dummy for lvl in accel.levels])
        self.fan_x = np.array([f[0] for f in accel.fanouts])[:, None]
        self.fan_y = np.array([f[1] for f in accel.fanouts])[:, None]
        self.coef = tz.coefficients(layer)  # [3, 8]
        self.axis = np.stack([tz.axis_of(t) for t in range(3)])  # [3, 8]
        self.hash = np.where(self.axis >= 0, AXIS_HASH[np.maximum(self.axis, 0)] * self.coef, 0)
        # Only dims with a bound > 1 are worked on ("live"); the others map to a sentinel row
        # of ones, so arrays are [level, live dim (+1), mapping].
        live = [d for d in range(N_DIMS) if getattr(layer, DIMS[d]) > 1] or [0]
        self.live = np.array(live)
        self.n_live = len(live)
        self.remap = np.full(N_DIMS, len(live))
        self.remap[live] = np.arange(len(live))
        self.remap8 = self.remap.astype(np.int8)
        self.pair_axes = [any(len(dims) > 1 for dims in tz.AXES[t]) for t in range(3)]
        pad = np.zeros((3, 1), dtype=np.int64)
        self.coef_l = np.concatenate([self.coef[:, live], pad], axis=1)
        self.axis_l = np.concatenate([self.axis[:, live], pad - 1], axis=1)
        self.hash_l = np.concatenate([self.hash[:, live], pad], axis=1)
        # Default nesting order of each level's spatial loops (innermost first): the
        # accelerator's spatial constraint permutation, then the remaining dims.
        order = []
        for lvl in accel.levels:
            given = next((c.permutation for c in accel.constraints
                          if c.target == lvl.name and c.type == "spatial" and c.permutation), ())
            dims = [DIMS.index(d) for d in given] + [d for d in range(N_DIMS) if DIMS[d] not in given]
            order.append(dims)
        self.spatial_order = np.array(order, dtype=np.int64)  # [L, 8] original dim indices
        self.fanouts = accel.fanouts

    @functools.cached_property
    def kernel_args(self) -> dict[str, np.ndarray]:
        """The constants :func:`jaqmoo.mapping.model._numba.analyze_into` needs (indexed by original dim)."""
        live = np.zeros(N_DIMS, dtype=bool)
        live[self.live] = True
        singles, pairs, pair_mult, pair_of = tz.axis_table(self.layer, live)
        return {
            "spatial_order": self.spatial_order, "live": live, "dummy": self.dummy,
            "fan_cap_x": np.ascontiguousarray(self.fan_x[:, 0], dtype=np.int64),
            "fan_cap_y": np.ascontiguousarray(self.fan_y[:, 0], dtype=np.int64),
            "coef": self.coef, "axis": self.axis, "hash": np.ascontiguousarray(self.hash, dtype=np.int64),
            "singles": singles, "pairs": pairs, "pair_mult": pair_mult, "pair_of": pair_of,
        }


class LiveDims:
    """Index a [live dim (+1), ...] array by original dim number (dead dims read the ones row)."""

    def __init__(self, arr: np.ndarray, remap: np.ndarray) -> None:
        self.arr, self.remap = arr, remap

    def __getitem__(self, d: int) -> np.ndarray:
        return self.arr[self.remap[d]]
