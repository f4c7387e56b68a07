"""A batch of dataflow mappings of one layer on one accelerator, as plain integer arrays.

Conventions (shared with :mod:`jaqmoo.mapping.model` and the mapper):

* dims are in :data:`jaqmoo.workload.DIMS` order ``(N, G, K, C, P, Q, R, S)``;
* levels are in ``Accelerator.levels`` order, 0 = outermost (DRAM), ``L - 1`` = innermost
  storage level (the compute units sit below it);
* tensors are in :data:`jaqmoo.hardware.spec.TENSORS` order ``(Weights, Inputs, Outputs)``.

For every mapping ``m`` and dim ``d``::

    prod_l temporal[m, l, d] * spatial_x[m, l, d] * spatial_y[m, l, d] == layer.dims[d]

A level's *tile* is everything at and below it: its own temporal loops, the spatial
fan-out below it and all inner levels. ``perm[m, l]`` lists the dim indices of level ``l``'s
temporal loops from INNERMOST to OUTERMOST (Timeloop's permutation-string convention:
``"PRKC"`` means P innermost, C outermost); loops with factor 1 may sit anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jaqmoo.errors import JaqmooError
from jaqmoo.workload import DIMS, Layer

N_DIMS = len(DIMS)
DIM_INDEX = {d: i for i, d in enumerate(DIMS)}


@dataclass
class MappingBatch:
    """M mappings of one layer on one accelerator with L storage levels."""

    temporal: np.ndarray
    """int64 [M, L, 8]: temporal loop factor of each dim at each storage level."""
    spatial_x: np.ndarray
    """int64 [M, L, 8]: spatial factors of the fan-out directly BELOW level l, mesh X."""
    spatial_y: np.ndarray
    """int64 [M, L, 8]: spatial factors of the fan-out directly BELOW level l, mesh Y."""
    perm: np.ndarray
    """int64 [M, L, 8]: level l's temporal loop order, dim indices innermost -> outermost."""
    keep: np.ndarray
    """bool [M, L, 3]: tensor (Weights, Inputs, Outputs) is stored at level l."""
    spatial_perm: np.ndarray | None = None
    """Optional int64 [M, L, 8]: nesting order of the spatial loops below level l, dim indices
    innermost first (Timeloop's spatial permutation; X loops nest inside Y loops). It only
    matters for inter-PE link transfers. None: the accelerator's spatial constraint order,
    else DIMS order."""

    def __post_init__(self) -> None:
        self.temporal = np.asarray(self.temporal, dtype=np.int64)
        self.spatial_x = np.asarray(self.spatial_x, dtype=np.int64)
        self.spatial_y = np.asarray(self.spatial_y, dtype=np.int64)
        self.perm = np.asarray(self.perm, dtype=np.int64)
        self.keep = np.asarray(self.keep, dtype=bool)
        shape = self.temporal.shape
        if len(shape) != 3 or shape[2] != N_DIMS:
            raise JaqmooError(f"MappingBatch.temporal must have shape [M, L, {N_DIMS}] (got {shape})")
        for name in ("spatial_x", "spatial_y", "perm"):
            if getattr(self, name).shape != shape:
                raise JaqmooError(f"MappingBatch.{name} must have shape {shape} (got {getattr(self, name).shape})")
        if self.spatial_perm is not None:
            self.spatial_perm = np.asarray(self.spatial_perm, dtype=np.int64)
            if self.spatial_perm.shape != shape:
                raise JaqmooError(f"MappingBatch.spatial_perm must have shape {shape} (got {self.spatial_perm.shape})")
        if self.keep.shape != (shape[0], shape[1], 3):
            raise JaqmooError(f"MappingBatch.keep must have shape {(shape[0], shape[1], 3)} (got {self.keep.shape})")

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return int(self.temporal.shape[0])

    @property
    def n_levels(self) -> int:
        return int(self.temporal.shape[1])

    @property
    def spatial(self) -> np.ndarray:
        """int64 [M, L, 8]: total spatial factor below each level (X times Y)."""
        return self.spatial_x * self.spatial_y

    def take(self, index) -> MappingBatch:
        """The sub-batch selected by ``index`` (an int array, a bool mask or a slice)."""
        if isinstance(index, int | np.integer):
            index = [int(index)]
        return MappingBatch(
            self.temporal[index], self.spatial_x[index], self.spatial_y[index],
            self.perm[index], self.keep[index],
            None if self.spatial_perm is None else self.spatial_perm[index],
        )

    @staticmethod
    def concat(batches: list[MappingBatch]) -> MappingBatch:
        """Stack batches of the same layer/accelerator into one."""
        if not batches:
            raise JaqmooError("MappingBatch.concat needs at least one batch")
        arrays = [np.concatenate([getattr(b, f) for b in batches])
                  for f in ("temporal", "spatial_x", "spatial_y", "perm", "keep")]
        if any(b.spatial_perm is not None for b in batches):
            arrays.append(np.concatenate([
                b.spatial_perm if b.spatial_perm is not None else np.broadcast_to(np.arange(N_DIMS), b.temporal.shape)
                for b in batches]))
        return MappingBatch(*arrays)

    # -------------------------------------------------------------- validation
    def factor_products(self) -> np.ndarray:
        """int64 [M, 8]: product over levels of all factors of each dim."""
        return np.prod(self.temporal * self.spatial_x * self.spatial_y, axis=1)

    def covers(self, layer: Layer) -> np.ndarray:
        """bool [M]: the factors of every dim multiply to the layer's bound."""
        bounds = np.array([getattr(layer, d) for d in DIMS], dtype=np.int64)
        return np.all(self.factor_products() == bounds, axis=1)

    def check(self, layer: Layer) -> None:
        """Raise :class:`JaqmooError` unless every mapping is a well-formed mapping of ``layer``."""
        if np.any(self.temporal < 1) or np.any(self.spatial_x < 1) or np.any(self.spatial_y < 1):
            raise JaqmooError("mapping factors must be positive integers")
        bad = ~self.covers(layer)
        if np.any(bad):
            m = int(np.argmax(bad))
            prods = self.factor_products()[m]
            wrong = [f"{d}: {int(prods[i])} != {getattr(layer, d)}" for i, d in enumerate(DIMS)
                     if prods[i] != getattr(layer, d)]
            raise JaqmooError(f"mapping {m} does not cover layer {layer.name!r}: factor products "
                              + ", ".join(wrong))
        sorted_perm = np.sort(self.perm, axis=2)
        if np.any(sorted_perm != np.arange(N_DIMS)):
            raise JaqmooError("every perm[m, l] must be a permutation of the 8 dim indices")


def single_level_order(order: str) -> list[int]:
    """Dim indices for a permutation string of jaqmoo dim letters, innermost first.

    Dims missing from ``order`` are appended (outermost) in DIMS order.
    """
    idx = []
    for ch in order:
        if ch not in DIM_INDEX:
            raise JaqmooError(f"unknown dim {ch!r} in permutation {order!r} (dims are {''.join(DIMS)})")
        if DIM_INDEX[ch] in idx:
            raise JaqmooError(f"dim {ch!r} repeated in permutation {order!r}")
        idx.append(DIM_INDEX[ch])
    idx += [i for i in range(N_DIMS) if i not in idx]
    return idx


def describe(batch: MappingBatch, i: int, level_names: tuple[str, ...] | None = None) -> str:
    """One-line summary of mapping ``i``, outermost level first.

    Example: ``DRAM[P8 Q2 K4] glb[P14 Q4] X[Q14] Y[C3 S3] spad[R3] psum[K8]``. Temporal loops
    are listed outermost first; spatial fan-outs below a level as ``X[...]``/``Y[...]``.
    """
    parts = []
    names = level_names or tuple(f"L{lvl}" for lvl in range(batch.n_levels))
    for lvl in range(batch.n_levels):
        order = list(batch.perm[i, lvl])[::-1]  # outermost first for reading
        loops = [f"{DIMS[d]}{int(batch.temporal[i, lvl, d])}" for d in order if batch.temporal[i, lvl, d] > 1]
        if loops:
            parts.append(f"{names[lvl]}[{' '.join(loops)}]")
        for axis, arr in (("X", batch.spatial_x), ("Y", batch.spatial_y)):
            sp = [f"{DIMS[d]}{int(arr[i, lvl, d])}" for d in range(N_DIMS) if arr[i, lvl, d] > 1]
            if sp:
                parts.append(f"{axis}[{' '.join(sp)}]")
    return " ".join(parts) if parts else "(all loops of size 1)"
