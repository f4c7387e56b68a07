"""One-pass CPU kernels of CSQ's fused conv-BN-activation block (:mod:`jaqmoo.quant.csq`).

The eager block makes about forty elementwise passes per call: encoding the input (divide,
round, compare twice, subtract, scale, round, clamp, fill, convert), the batch-norm statistics
and normalisation, the activation mask and its bit-packing, and in backward the mask's
unpacking (shift, and, convert, multiply), the batch-norm terms and LSQ's two gradients. For a
contiguous float32 CPU block whose codes fit one byte, these kernels do the same per-element
arithmetic in one pass per stage:

* :func:`encode` (forward, per batch slice): ``x`` once -> the codes, the clip-marked int8
  residual and the float quantized input of the convolution;
* :func:`store_and_sum` (forward, per slice): copies the slice's convolution output into the
  block's output while summing each channel's values and squares (float64) -> :func:`stats`;
* :func:`normalize` (forward, whole batch): batch norm, activation clamp and the bit-packed mask
  in place, one pass;
* :func:`bn_sums` (backward pass 1): the trained channels' batch-norm reductions;
* :func:`grad_y` (backward, per slice): unpacked mask x gradient x per-channel scale, with the
  trained channels' exact batch-norm terms, into the convolution's output gradient;
* :func:`decode` (backward, per slice): codes -> the float quantized input;
* :func:`lsq_grad` (backward, per slice): LSQ's input gradient (masked where clipped) and the
  step gradient's sum (``code`` where clipped, ``residual / 254`` inside, times the gradient).

Elementwise values are the eager path's float32 operations in the same order, so they are
bit-identical; reductions (batch statistics, the trained channels' batch-norm sums, the step
gradient) are summed in float64, so they differ from the eager float32 sums by summation order
only (``tests/test_csq.py``). The batch statistics are ``E[y^2] - E[y]^2`` in float64 (exact to
float32 unless a channel's variance is below ~1e-9 of its squared mean). Serial and parallel
variants give the same values (each channel's or row's sum in one fixed order).
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from jaqmoo.quant.lsq_kernels import kernel_threads

#: int8 rounding residual scale and clip mark (the values of :mod:`jaqmoo.quant.csq`)
RESID_SCALE = 254.0
CLIP_MARK = -128
#: LLVM may reorder the float64 sums of the reductions (so they vectorise); no other fast-math
#: flag, so every elementwise float32 value stays the eager path's
REASSOC = {"reassoc"}


def applies(x: Tensor, qmin: int, qmax: int) -> bool:
    """Whether the kernels serve a block with input ``x`` and code range ``[qmin, qmax]``: a
    contiguous float32 CPU input and codes in one byte (int8 or uint8)."""
    one_byte = (qmin >= -128 and qmax <= 127) or (qmin >= 0 and qmax <= 255)
    return x.device.type == "cpu" and x.dtype == torch.float32 and x.is_contiguous() and one_byte


# ---------------------------------------------------------------- row bodies (inlined)

@numba.njit(cache=True, nogil=True, inline="always")
def _encode_row(x, s, low, high, codes, resid, xq, n):  # pragma: no cover - compiled
    scale = np.float32(-RESID_SCALE)
    for i in range(x.shape[1]):  # branch-free: vectorises
        v = x[n, i] / s
        r = np.rint(v)  # round half to even, as torch.round
        e = min(max(np.rint((v - r) * scale), np.float32(-127.0)), np.float32(127.0))
        c = min(max(r, low), high)
        resid[n, i] = CLIP_MARK if (v < low) | (v > high) else e
        codes[n, i] = c
        xq[n, i] = c * s


@numba.njit(cache=True, nogil=True, inline="always")
def _normalize_row(z, mean, a, b, lo, hi, masked, bits, packed, n):  # pragma: no cover - compiled
    hw = z.shape[2]
    for c in range(z.shape[1]):
        m, ac, bc = mean[c], a[c], b[c]
        for j in range(hw):
            v = (z[n, c, j] - m) * ac + bc
            bits[c * hw + j] = (v > lo) & (v < hi)
            z[n, c, j] = min(max(v, lo), hi) if masked else v
    if masked:
        total = bits.size
        full = total // 8
        for k in range(full):
            byte = 0
            for t in range(8):
                byte |= bits[8 * k + t] << t
            packed[n, k] = byte
        if full < packed.shape[1]:  # the padded last byte
            byte = 0
            for i in range(8 * full, total):
                byte |= bits[i] << (i - 8 * full)
            packed[n, full] = byte


@numba.njit(cache=True, nogil=True, inline="always")
def _bit(packed, n, i):  # pragma: no cover - compiled
    return np.float32((packed[n, i >> 3] >> (i & 7)) & 1)


@numba.njit(cache=True, nogil=True, inline="always")
def _unpack_row(packed, n, bits):  # pragma: no cover - compiled
    total = bits.size
    full = total // 8
    for k in range(full):
        byte = packed[n, k]
        for t in range(8):
            bits[8 * k + t] = np.float32((byte >> t) & 1)
    for i in range(8 * full, total):
        bits[i] = np.float32((packed[n, i >> 3] >> (i & 7)) & 1)


@numba.njit(cache=True, nogil=True, inline="always")
def _grad_y_row(go, packed, masked, scale, y_s, idx, mean_s, inv_s, a_s, b_s, scale_s, gy, gy_s, bits,
                n):  # pragma: no cover - compiled
    hw = go.shape[2]
    if masked:
        _unpack_row(packed, n, bits)
    else:
        bits[:] = np.float32(1.0)
    for c in range(go.shape[1]):
        sc = scale[c]
        base = c * hw
        for j in range(hw):
            gy[n, c, j] = (go[n, c, j] * bits[base + j]) * sc
    for k in range(idx.size):
        c = idx[k]
        base = c * hw
        m, iv, ak, bk, sk = mean_s[k], inv_s[k], a_s[k], b_s[k], scale_s[k]
        for j in range(hw):
            g = go[n, c, j] * bits[base + j]
            xhat = (y_s[n, k, j] - m) * iv
            v = ((g - ak) - xhat * bk) * sk
            gy_s[n, k, j] = v
            gy[n, c, j] = v


@numba.njit(cache=True, nogil=True, inline="always", fastmath=REASSOC)
def _lsq_row(gxq, codes, resid, grad_x, n):  # pragma: no cover - compiled
    acc = 0.0
    div = np.float32(RESID_SCALE)
    for i in range(gxq.shape[1]):
        g = gxq[n, i]
        r = resid[n, i]
        clipped = r == CLIP_MARK
        ds = np.float32(codes[n, i]) if clipped else np.float32(r) / div
        acc += ds * g
        grad_x[n, i] = np.float32(0.0) if clipped else g
    return acc


@numba.njit(cache=True, nogil=True, inline="always")
def _decode_row(codes, s, xq, n):  # pragma: no cover - compiled
    for i in range(codes.shape[1]):
        xq[n, i] = np.float32(codes[n, i]) * s


@numba.njit(cache=True, nogil=True, inline="always", fastmath=REASSOC)
def _store_channel(yc, y, sums, c):  # pragma: no cover - compiled
    s1 = 0.0
    s2 = 0.0
    for n in range(yc.shape[0]):
        for j in range(yc.shape[2]):
            v = yc[n, c, j]
            y[n, c, j] = v
            s1 += v
            s2 += np.float64(v) * v
    sums[0, c] += s1
    sums[1, c] += s2


@numba.njit(cache=True, nogil=True, inline="always", fastmath=REASSOC)
def _bn_sums_channel(go, packed, masked, y_s, idx, mean_s, inv_s, out, k):  # pragma: no cover - compiled
    c = idx[k]
    hw = go.shape[2]
    sb = 0.0
    sg = 0.0
    m, iv = mean_s[k], inv_s[k]
    for n in range(go.shape[0]):
        for j in range(hw):
            g = go[n, c, j] * _bit(packed, n, c * hw + j) if masked else go[n, c, j]
            sb += g
            sg += g * ((y_s[n, k, j] - m) * iv)
    out[0, k] = sb
    out[1, k] = sg


# ---------------------------------------------------------------- serial and parallel drivers

@numba.njit(cache=True, nogil=True)
def _encode_serial(x, s, low, high, codes, resid, xq):  # pragma: no cover - compiled
    for n in range(x.shape[0]):
        _encode_row(x, s, low, high, codes, resid, xq, n)


@numba.njit(cache=True, nogil=True, parallel=True)
def _encode_parallel(x, s, low, high, codes, resid, xq):  # pragma: no cover - compiled
    for n in numba.prange(x.shape[0]):
        _encode_row(x, s, low, high, codes, resid, xq, n)


@numba.njit(cache=True, nogil=True)
def _normalize_serial(z, mean, a, b, lo, hi, masked, packed):  # pragma: no cover - compiled
    bits = np.empty(z.shape[1] * z.shape[2], dtype=np.uint8)
    for n in range(z.shape[0]):
        _normalize_row(z, mean, a, b, lo, hi, masked, bits, packed, n)


@numba.njit(cache=True, nogil=True, parallel=True)
def _normalize_parallel(z, mean, a, b, lo, hi, masked, packed):  # pragma: no cover - compiled
    for n in numba.prange(z.shape[0]):
        bits = np.empty(z.shape[1] * z.shape[2], dtype=np.uint8)
        _normalize_row(z, mean, a, b, lo, hi, masked, bits, packed, n)


@numba.njit(cache=True, nogil=True)
def _grad_y_serial(go, packed, masked, scale, y_s, idx, mean_s, inv_s, a_s, b_s, scale_s, gy, gy_s):  # pragma: no cover
    bits = np.empty(go.shape[1] * go.shape[2], dtype=np.float32)
    for n in range(go.shape[0]):
        _grad_y_row(go, packed, masked, scale, y_s, idx, mean_s, inv_s, a_s, b_s, scale_s, gy, gy_s, bits, n)


@numba.njit(cache=True, nogil=True, parallel=True)
def _grad_y_parallel(go, packed, masked, scale, y_s, idx, mean_s, inv_s, a_s, b_s, scale_s, gy, gy_s):  # pragma: no cover
    for n in numba.prange(go.shape[0]):
        bits = np.empty(go.shape[1] * go.shape[2], dtype=np.float32)
        _grad_y_row(go, packed, masked, scale, y_s, idx, mean_s, inv_s, a_s, b_s, scale_s, gy, gy_s, bits, n)


@numba.njit(cache=True, nogil=True, fastmath=REASSOC)
def _lsq_serial(gxq, codes, resid, grad_x):  # pragma: no cover - compiled
    part = np.zeros(gxq.shape[0])
    for n in range(gxq.shape[0]):
        part[n] = _lsq_row(gxq, codes, resid, grad_x, n)
    return part.sum()


@numba.njit(cache=True, nogil=True, parallel=True, fastmath=REASSOC)
def _lsq_parallel(gxq, codes, resid, grad_x):  # pragma: no cover - compiled
    part = np.zeros(gxq.shape[0])
    for n in numba.prange(gxq.shape[0]):
        part[n] = _lsq_row(gxq, codes, resid, grad_x, n)
    return part.sum()


@numba.njit(cache=True, nogil=True)
def _decode_serial(codes, s, xq):  # pragma: no cover - compiled
    for n in range(codes.shape[0]):
        _decode_row(codes, s, xq, n)


@numba.njit(cache=True, nogil=True, parallel=True)
def _decode_parallel(codes, s, xq):  # pragma: no cover - compiled
    for n in numba.prange(codes.shape[0]):
        _decode_row(codes, s, xq, n)


@numba.njit(cache=True, nogil=True, fastmath=REASSOC)
def _store_serial(yc, y, sums):  # pragma: no cover - compiled
    for c in range(yc.shape[1]):
        _store_channel(yc, y, sums, c)


@numba.njit(cache=True, nogil=True, parallel=True, fastmath=REASSOC)
def _store_parallel(yc, y, sums):  # pragma: no cover - compiled
    for c in numba.prange(yc.shape[1]):
        _store_channel(yc, y, sums, c)


@numba.njit(cache=True, nogil=True, fastmath=REASSOC)
def _bn_sums_serial(go, packed, masked, y_s, idx, mean_s, inv_s, out):  # pragma: no cover - compiled
    for k in range(idx.size):
        _bn_sums_channel(go, packed, masked, y_s, idx, mean_s, inv_s, out, k)


@numba.njit(cache=True, nogil=True, parallel=True, fastmath=REASSOC)
def _bn_sums_parallel(go, packed, masked, y_s, idx, mean_s, inv_s, out):  # pragma: no cover - compiled
    for k in numba.prange(idx.size):
        _bn_sums_channel(go, packed, masked, y_s, idx, mean_s, inv_s, out, k)


# ---------------------------------------------------------------- torch-facing wrappers

def _np(t: Tensor, *shape: int) -> np.ndarray:
    return t.detach().reshape(*shape).numpy()


def _rows(t: Tensor) -> np.ndarray:
    return _np(t, t.shape[0], -1)


def _planes(t: Tensor) -> np.ndarray:
    return _np(t, t.shape[0], t.shape[1], -1)


def _f32(t: Tensor) -> np.ndarray:
    return t.detach().to(torch.float32).contiguous().view(-1).numpy()


def _mask_args(packed: Tensor | None, n: int) -> tuple[np.ndarray, bool]:
    if packed is None:
        return np.zeros((n, 1), dtype=np.uint8), False
    return packed.numpy(), True


def encode(x: Tensor, s: float, qmin: int, qmax: int, codes: Tensor, resid: Tensor) -> Tensor:
    """Fill ``codes`` and ``resid`` (the shape of ``x``, as :func:`jaqmoo.quant.csq.encode_input`)
    and return the quantized input ``codes * s`` (float32)."""
    xq = torch.empty_like(x)
    sv, low, high = np.float32(s), np.float32(qmin), np.float32(qmax)
    run = _encode_parallel if kernel_threads() > 1 else _encode_serial
    run(_rows(x), sv, low, high, _rows(codes), _rows(resid), _rows(xq))
    return xq


def store_and_sum(yc: Tensor, y: Tensor, sums: np.ndarray) -> None:
    """Copy the slice ``yc`` into ``y`` (the same shape: a view of the block's output) and add
    each channel's sum and sum of squares to ``sums[0]`` / ``sums[1]`` (float64)."""
    run = _store_parallel if kernel_threads() > 1 else _store_serial
    run(_planes(yc.contiguous()), _planes(y), sums)


def stats(sums: np.ndarray, count: int) -> tuple[Tensor, Tensor]:
    """Biased per-channel variance and mean (float32) from :func:`store_and_sum`'s sums."""
    mean = sums[0] / count
    var = np.maximum(sums[1] / count - mean * mean, 0.0)
    return torch.from_numpy(var.astype(np.float32)), torch.from_numpy(mean.astype(np.float32))


def normalize(y: Tensor, mean: Tensor, a: Tensor, b: Tensor, lo: float, hi: float, masked: bool) -> Tensor | None:
    """In place: ``y = (y - mean) * a + b`` per channel, clamped to ``[lo, hi]`` when ``masked``;
    returns the bit-packed mask ``lo < y < hi`` (before the clamp; as :func:`jaqmoo.quant.csq.pack_bits`),
    or None when not ``masked``."""
    n = y.shape[0]
    per_row = y[0].numel()
    packed = torch.empty((n, (per_row + 7) // 8) if masked else (n, 1), dtype=torch.uint8)
    run = _normalize_parallel if kernel_threads() > 1 else _normalize_serial
    run(_planes(y), _f32(mean), _f32(a), _f32(b), np.float32(lo), np.float32(hi), masked, packed.numpy())
    return packed if masked else None


def bn_sums(grad_out: Tensor, packed: Tensor | None, y_s: Tensor, idx: Tensor, mean_s: Tensor,
            inv_s: Tensor) -> tuple[Tensor, Tensor]:
    """The trained channels' ``sum(gz)`` and ``sum(gz * xhat)`` over the batch (``gz``: the
    gradient through the activation mask), float32 from float64 sums."""
    go = grad_out.contiguous()
    out = np.zeros((2, idx.numel()))
    mask, masked = _mask_args(packed, go.shape[0])
    run = _bn_sums_parallel if kernel_threads() > 1 else _bn_sums_serial
    run(_planes(go), mask, masked, _planes(y_s), idx.numpy(), _f32(mean_s), _f32(inv_s), out)
    sums = torch.from_numpy(out.astype(np.float32))
    return sums[0], sums[1]


def grad_y(grad_out: Tensor, packed: Tensor | None, scale: Tensor, y_s: Tensor, idx: Tensor, mean_s: Tensor,
           inv_s: Tensor, a_s: Tensor, b_s: Tensor, scale_s: Tensor) -> tuple[Tensor, Tensor]:
    """The convolution's output gradient of a slice, all channels and the trained ones apart:
    ``gz * scale`` (``gz``: the gradient through the unpacked mask), and for trained channel
    ``k``: ``((gz - a_s) - xhat * b_s) * scale_s`` (the exact batch-norm backward)."""
    go = grad_out.contiguous()
    n, k = go.shape[0], idx.numel()
    gy = torch.empty_like(go)
    gy_s = go.new_empty((n, k, *go.shape[2:]))
    mask, masked = _mask_args(packed, n)
    run = _grad_y_parallel if kernel_threads() > 1 else _grad_y_serial
    run(_planes(go), mask, masked, _f32(scale), _planes(y_s), idx.numpy(), _f32(mean_s), _f32(inv_s), _f32(a_s),
        _f32(b_s), _f32(scale_s), _planes(gy), _planes(gy_s))
    return gy, gy_s


def decode(codes: Tensor, s: float) -> Tensor:
    """The quantized input ``codes * s`` (float32)."""
    xq = torch.empty(codes.shape, dtype=torch.float32)
    run = _decode_parallel if kernel_threads() > 1 else _decode_serial
    run(_rows(codes), np.float32(s), _rows(xq))
    return xq


def lsq_grad(gxq: Tensor, codes: Tensor, resid: Tensor, grad_x: Tensor) -> float:
    """Write LSQ's input gradient (``gxq``, zero where clipped) into ``grad_x`` and return the
    step gradient's sum ``sum(ds * gxq)`` (``ds``: the code where clipped, ``resid / 254`` inside)."""
    run = _lsq_parallel if kernel_threads() > 1 else _lsq_serial
    return float(run(_rows(gxq.contiguous()), _rows(codes), _rows(resid), _rows(grad_x)))


__all__ = ["applies", "bn_sums", "decode", "encode", "grad_y", "lsq_grad", "normalize", "stats", "store_and_sum"]
