"""How the three convolution tensors project the loop dims onto their coordinates.

Weights are indexed by (G, K, C, R, S), Outputs by (N, G, K, P, Q) and Inputs by
(N, G, C, H, W) with ``H = P*stride_h + R*dilation_h`` and ``W = Q*stride_w + S*dilation_w``.
A tile that spans ``e[d]`` values of each dim covers, per tensor axis, ``e[d]`` values
(single-dim axes) or ``(e[P]-1)*stride_h + (e[R]-1)*dilation_h + 1`` values (the input's
sliding-window axes), the axis-aligned box Timeloop uses.

Everything here is vectorized over leading array axes; dims are the last axis.
"""

from __future__ import annotations

import numpy as np

from jaqmoo.workload import DIMS, Layer

N, G, K, C, P, Q, R, S = range(len(DIMS))

W_T, I_T, O_T = 0, 1, 2
"""Tensor indices (Weights, Inputs, Outputs)."""

READ_WRITE = (False, False, True)
"""Outputs are read-modify-written (partial sums); the others are read-only."""

# Per tensor: list of axes; each axis is a tuple of dims (one dim, or the (P, R) / (Q, S) pair).
AXES: tuple[tuple[tuple[int, ...], ...], ...] = (
    ((G,), (K,), (C,), (R,), (S,)),
    ((N,), (G,), (C,), (P, R), (Q, S)),
    ((N,), (G,), (K,), (P,), (Q,)),
)


def coefficients(layer: Layer) -> np.ndarray:
    """int64 [3, 8]: how far one step of each dim moves each tensor along its axis (0 = irrelevant)."""
    coef = np.zeros((3, len(DIMS)), dtype=np.int64)
    for d in (G, K, C, R, S):
        coef[W_T, d] = 1
    for d in (N, G, K, P, Q):
        coef[O_T, d] = 1
    for d in (N, G, C):
        coef[I_T, d] = 1
    coef[I_T, P] = layer.stride_h
    coef[I_T, R] = layer.dilation_h
    coef[I_T, Q] = layer.stride_w
    coef[I_T, S] = layer.dilation_w
    return coef


def axis_of(tensor: int) -> np.ndarray:
    """int64 [8]: the axis index of each dim for ``tensor`` (-1 = irrelevant)."""
    out = np.full(len(DIMS), -1, dtype=np.int64)
    for a, dims in enumerate(AXES[tensor]):
        for d in dims:
            out[d] = a
    return out


def relevant(tensor: int) -> np.ndarray:
    """bool [8]: dims that index ``tensor``."""
    return axis_of(tensor) >= 0


def axis_extents_dm(ext, tensor: int, layer: Layer) -> list[np.ndarray]:
    """Per-axis extents of the box covered by per-dim extents ``ext`` (dims FIRST: ``ext[d]``)."""
    out = []
    for dims in AXES[tensor]:
        if len(dims) == 1:
            out.append(ext[dims[0]])
        elif dims == (P, R):
            out.append((ext[P] - 1) * layer.stride_h + (ext[R] - 1) * layer.dilation_h + 1)
        else:  # (Q, S)
            out.append((ext[Q] - 1) * layer.stride_w + (ext[S] - 1) * layer.dilation_w + 1)
    return out


def tile_size_dm(ext, tensor: int, layer: Layer) -> np.ndarray:
    """Values of ``tensor`` in the box covered by per-dim extents ``ext`` (dims FIRST)."""
    axes = axis_extents_dm(ext, tensor, layer)
    size = axes[0]
    for a in axes[1:]:
        size = size * a
    return size


def axis_extents(ext: np.ndarray, tensor: int, layer: Layer) -> list[np.ndarray]:
    """Per-axis extents of the box covered by per-dim extents ``ext`` ([..., 8])."""
    return axis_extents_dm(np.moveaxis(ext, -1, 0), tensor, layer)


def tile_size(ext: np.ndarray, tensor: int, layer: Layer) -> np.ndarray:
    """Values of ``tensor`` in the box covered by per-dim extents ``ext`` ([..., 8])."""
    return tile_size_dm(np.moveaxis(ext, -1, 0), tensor, layer)


def tensor_sizes(layer: Layer) -> tuple[int, int, int]:
    """Full (Weights, Inputs, Outputs) sizes of the layer, Timeloop's way (padding included)."""
    ext = np.array([getattr(layer, d) for d in DIMS], dtype=np.int64)
    return tuple(int(tile_size(ext, t, layer)) for t in range(3))


def distinct_pairs(n1: np.ndarray, a: np.ndarray, n2: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How many distinct values ``a*i + b*j`` takes for ``0 <= i < n1``, ``0 <= j < n2`` (a, b > 0).

    With ``g = gcd(a, b)``, a value has several representations exactly when ``i`` can move
    down by ``b/g`` while ``j`` moves up by ``a/g``; counting only the representation with
    the smallest ``i`` gives ``n1*n2 - max(0, n1 - b/g) * max(0, n2 - a/g)``. Works on
    integer or integer-valued float arrays (the gcd is only taken where both n > 1).
    """
    n1, a, n2, b = np.broadcast_arrays(*(np.asarray(x) for x in (n1, a, n2, b)))
    shape = n1.shape
    n1, a, n2, b = (x.reshape(-1) for x in (n1, a, n2, b))
    count = n1 * n2
    both = (n1 > 1) & (n2 > 1)
    if both.any():
        i = np.nonzero(both)
        ai, bi = a[i].astype(np.int64), b[i].astype(np.int64)
        g = np.gcd(ai, bi)
        count = np.array(count, copy=True)
        count[i] = count[i] - np.maximum(0, n1[i] - bi // g) * np.maximum(0, n2[i] - ai // g)
    return count.reshape(shape)


def distinct_children_dm(child_ext, fan, tensor: int, layer: Layer) -> np.ndarray:
    """Number of distinct ``tensor`` tiles among the children of a spatial fan-out (dims FIRST).

    ``child_ext[d]`` is one child's extent of dim ``d`` and ``fan[d]`` the spatial factor.
    Children whose tiles coincide (dims irrelevant to the tensor, or sliding-window
    offsets that land on the same input rows) share one parent access: multicast for
    read-only tensors, spatial reduction for Outputs. Like Timeloop, only identical tiles
    are shared (partially overlapping halos are not).
    """
    count = None
    for dims in AXES[tensor]:
        if len(dims) == 1:
            term = fan[dims[0]]
        else:
            big, small = dims
            sb, sd = ((layer.stride_h, layer.dilation_h) if big == P else (layer.stride_w, layer.dilation_w))
            term = distinct_pairs(fan[big], child_ext[big] * sb, fan[small], child_ext[small] * sd)
        count = term if count is None else count * term
    return count


def distinct_children(child_ext: np.ndarray, fan: np.ndarray, tensor: int, layer: Layer) -> np.ndarray:
    """:func:`distinct_children_dm` with dims LAST (``[..., 8]`` arrays)."""
    return distinct_children_dm(np.moveaxis(child_ext, -1, 0), np.moveaxis(fan, -1, 0), tensor, layer)


def axis_table(layer: Layer, live: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:data:`AXES` as compact arrays for compiled code: ``(singles, pairs, pair_mult, pair_of)``.

    Per tensor ``t``: ``singles[t]`` lists the ``live`` dims (bool [8]; the others have
    extent 1) that form a single-dim axis, padded with -1 (int64 [3, 5]);
    ``pairs[t, k]`` the (dim, dim) of its k-th sliding-window axis, padded with -1 (int64
    [3, 2, 2]), which spans ``(e[d0] - 1) * pair_mult[t, k, 0] + (e[d1] - 1) *
    pair_mult[t, k, 1] + 1`` values; ``pair_of[t, d]`` the pair holding dim ``d`` (-1: none).
    A box's size is the product of the single extents and the pair extents.
    """
    singles = np.full((3, max(len(axes) for axes in AXES)), -1, dtype=np.int64)
    pairs = np.full((3, 2, 2), -1, dtype=np.int64)
    pair_mult = np.zeros((3, 2, 2), dtype=np.int64)
    pair_of = np.full((3, len(DIMS)), -1, dtype=np.int64)
    window = {P: (layer.stride_h, layer.dilation_h), Q: (layer.stride_w, layer.dilation_w)}
    for t, axes in enumerate(AXES):
        single = [ds[0] for ds in axes if len(ds) == 1 and live[ds[0]]]
        singles[t, :len(single)] = single
        for k, ds in enumerate(ds for ds in axes if len(ds) > 1):
            pairs[t, k] = ds
            pair_mult[t, k] = window[ds[0]]
            pair_of[t, list(ds)] = k
    return singles, pairs, pair_mult, pair_of
