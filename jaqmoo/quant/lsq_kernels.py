"""One-pass CPU kernels of the fused LSQ function for per-tensor steps (activations).

Eager PyTorch makes one pass over memory per operation: the fused LSQ forward
(:class:`jaqmoo.quant.fakequant._FusedLSQ`) needs seven elementwise passes (divide, clamp,
compare, round, mask, subtract, multiply) and its backward two. For a float32 tensor on the CPU
with one step (an activation quantizer), these kernels do the same arithmetic in one pass each:
the forward reads ``x`` once and writes the output, the step-gradient term and the clip mask; the
backward reads the incoming gradient, the term and the mask once, writes the input gradient and
sums the step gradient. Values are the same float32 operations in the same order (``x / s``,
round half to even, ``q * s``), so outputs and input gradients are bit-identical to the eager
path; the step gradient is summed in float64 (a different summation order, more accurate).

Compiled by numba on first use (cached next to this module, as the mapper's kernel is); with
more than one torch thread the parallel variants split the tensor into chunks over numba's
threads, limited to torch's thread count.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

#: elements per chunk of the parallel kernels (large enough to amortise a thread's start)
CHUNK = 1 << 16


@numba.njit(cache=True, nogil=True, inline="always")
def _forward_range(x, s, qmin, qmax, out, ds, outside, lo, hi):  # pragma: no cover - compiled
    low, high = np.float32(qmin), np.float32(qmax)
    for i in range(lo, hi):  # branch-free, so the compiler vectorises it
        v = x[i] / s
        c = min(max(v, low), high)
        r = np.rint(c)  # round half to even, as torch.round
        clipped = c != v
        out[i] = r * s
        ds[i] = c if clipped else r - v  # qmin / qmax where clipped, round(v) - v inside
        outside[i] = clipped


@numba.njit(cache=True, nogil=True, inline="always")
def _backward_range(grad, ds, outside, grad_x, lo, hi):  # pragma: no cover - compiled
    acc = 0.0
    for i in range(lo, hi):
        g = grad[i]
        acc += ds[i] * g
        grad_x[i] = 0.0 if outside[i] else g
    return acc


@numba.njit(cache=True, nogil=True)
def _forward_serial(x, s, qmin, qmax, out, ds, outside):  # pragma: no cover - compiled
    _forward_range(x, s, qmin, qmax, out, ds, outside, 0, x.size)


@numba.njit(cache=True, nogil=True)
def _backward_serial(grad, ds, outside, grad_x):  # pragma: no cover - compiled
    return _backward_range(grad, ds, outside, grad_x, 0, grad.size)


@numba.njit(cache=True, nogil=True, parallel=True)
def _forward_parallel(x, s, qmin, qmax, out, ds, outside, chunk):  # pragma: no cover - compiled
    n = x.size
    for c in numba.prange((n + chunk - 1) // chunk):
        _forward_range(x, s, qmin, qmax, out, ds, outside, c * chunk, min(n, (c + 1) * chunk))


@numba.njit(cache=True, nogil=True, parallel=True)
def _backward_parallel(grad, ds, outside, grad_x, chunk):  # pragma: no cover - compiled
    n = grad.size
    chunks = (n + chunk - 1) // chunk
    part = np.zeros(chunks)
    for c in numba.prange(chunks):
        part[c] = _backward_range(grad, ds, outside, grad_x, c * chunk, min(n, (c + 1) * chunk))
    return part.sum()


def applies(x: Tensor, step: Tensor) -> bool:
    """Whether the one-pass kernels serve ``x`` with ``step``: a contiguous float32 CPU tensor
    and a single float32 step."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and step.numel() == 1
            and step.dtype == torch.float32 and x.is_contiguous())


def _flat(t: Tensor) -> np.ndarray:
    return t.detach().view(-1).numpy()


def kernel_threads() -> int:
    """Threads the kernels use: torch's thread count (capped by numba's); sets numba's to match."""
    n = min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)
    if n > 1:
        numba.set_num_threads(n)
    return n


def forward(x: Tensor, s: Tensor, qmin: int, qmax: int) -> tuple[Tensor, Tensor, Tensor]:
    """``(out, ds, outside)`` of LSQ at the per-tensor step ``s`` (see the module docstring);
    :func:`applies` must hold."""
    out, ds = torch.empty_like(x), torch.empty_like(x)
    outside = torch.empty(x.shape, dtype=torch.bool)
    sv = np.float32(s.detach().reshape(()).item())
    if kernel_threads() > 1 and x.numel() > CHUNK:
        _forward_parallel(_flat(x), sv, qmin, qmax, _flat(out), _flat(ds), _flat(outside), CHUNK)
    else:
        _forward_serial(_flat(x), sv, qmin, qmax, _flat(out), _flat(ds), _flat(outside))
    return out, ds, outside


def backward(grad: Tensor, ds: Tensor, outside: Tensor, need_x: bool) -> tuple[Tensor | None, float]:
    """``(grad_x, sum(ds * grad))`` from the saved forward terms (``grad_x`` None unless ``need_x``)."""
    grad = grad.contiguous()
    grad_x = torch.empty_like(grad)
    if kernel_threads() > 1 and grad.numel() > CHUNK:
        total = _backward_parallel(_flat(grad), _flat(ds), _flat(outside), _flat(grad_x), CHUNK)
    else:
        total = _backward_serial(_flat(grad), _flat(ds), _flat(outside), _flat(grad_x))
    return (grad_x if need_x else None), float(total)


__all__ = ["CHUNK", "applies", "backward", "forward", "kernel_threads"]
