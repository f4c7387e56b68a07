"""Data-parallel supernet training over several processes (CPU: gloo; GPU: NCCL).

What each rank does, so that N processes at global batch B train the same weights as one
process at batch B (up to float summation order):

* every rank reads the same global batch (one shared, seeded order) and trains on its own
  contiguous ``B / N`` slice of it (:func:`shard`); the sandwich policies, augmentation and
  dropout seeds come from generators seeded alike on every rank, so every rank trains the same
  configurations;
* batch-norm statistics are those of the global batch: :class:`SyncedBatchNorm2d` (a
  ``BatchNorm2d`` whose training-mode forward and backward all-reduce their per-channel sums,
  as ``torch.nn.SyncBatchNorm`` does on GPUs; PyTorch's own refuses CPU tensors) replaces every
  ``BatchNorm2d`` (:func:`sync_batch_norms`; the state dict is unchanged), and CSQ's fused blocks
  all-reduce their statistics the same way (:func:`all_reduce_sum`);
* the gradients of a whole sandwich step (all its sub-steps accumulated) are averaged across
  ranks in one flat all-reduce before clipping and the optimizer step
  (:func:`average_gradients`). This is what ``DistributedDataParallel`` does per backward; the
  wrapper itself is not used because a sandwich step runs several forward/backward passes with
  different active parameters (step sizes of other bit-widths, elastic blocks), which DDP's
  reducer does not expect within one iteration;
* CSQ's channel ranking is measured by every rank on the same whole batches (as one process
  measures it) and rank 0's scores are broadcast (:func:`agree`), so every rank trains the same
  channels; LSQ's step-gradient scale counts the global batch's elements
  (``Supernet.set_batch_shards``);
* rank 0 writes the checkpoints; the others wait for it (:func:`barrier`) and resume from the
  same file.

With one process (no process group) every function here is the identity.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor, nn

from jaqmoo.errors import JaqmooError


@dataclass(frozen=True)
class DistContext:
    """This process's place in the process group (``rank`` 0 of ``world`` 1 without one)."""

    rank: int = 0
    world: int = 1

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def current(cls) -> DistContext:
        """The context of the initialised process group, or a single process."""
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()


def backend_for(device: torch.device) -> str:
    """``nccl`` for CUDA devices, ``gloo`` otherwise."""
    return "nccl" if device.type == "cuda" else "gloo"


def init_from_env(device: torch.device) -> DistContext:
    """Join the process group a launcher describes (``torchrun``: ``RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR``, ``MASTER_PORT``); a single process when ``WORLD_SIZE`` is unset or 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or (dist.is_available() and dist.is_initialized()):
        return DistContext.current()
    if not dist.is_available():
        raise JaqmooError("WORLD_SIZE > 1 but this PyTorch has no torch.distributed; run one process")
    dist.init_process_group(backend_for(device))
    return DistContext.current()


def rank_device(device: torch.device, ctx: DistContext) -> torch.device:
    """A CUDA rank's own GPU (``LOCAL_RANK``, else the rank modulo the GPU count); CPU unchanged."""
    if device.type != "cuda" or not ctx.active:
        return device
    local = int(os.environ.get("LOCAL_RANK", ctx.rank % max(1, torch.cuda.device_count())))
    torch.cuda.set_device(local)
    return torch.device("cuda", local)


def shard(x: Tensor, ctx: DistContext) -> Tensor:
    """This rank's contiguous slice of a global batch (the batch size must divide evenly)."""
    if not ctx.active:
        return x
    if len(x) % ctx.world:
        raise JaqmooError(f"a batch of {len(x)} does not split evenly over {ctx.world} processes; "
                          f"make --batch-size a multiple of --nproc")
    return x.chunk(ctx.world)[ctx.rank]


def all_reduce_sum(t: Tensor) -> Tensor:
    """``t`` summed over all ranks, in place (unchanged without a process group)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def mean_over_ranks(value: float, ctx: DistContext) -> float:
    """The mean of a per-rank number over all ranks."""
    if not ctx.active:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    return float(all_reduce_sum(t)) / ctx.world


def average_gradients(module: nn.Module, ctx: DistContext) -> None:
    """Average every parameter's gradient over the ranks in one flat all-reduce (every rank has
    gradients for the same parameters: they train the same configurations)."""
    if not ctx.active:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    all_reduce_sum(flat).div_(ctx.world)
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def agree(tensors: list[Tensor], ctx: DistContext) -> list[Tensor]:
    """Rank 0's ``tensors`` on every rank (bit-identical everywhere), in place."""
    if not ctx.active:
        return tensors
    for t in tensors:
        dist.broadcast(t, src=0)
    return tensors


def broadcast_module(module: nn.Module, ctx: DistContext) -> None:
    """Rank 0's parameters and buffers copied to every rank (a common start)."""
    if not ctx.active:
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def barrier(ctx: DistContext) -> None:
    if ctx.active:
        dist.barrier()


def data_parallel() -> bool:
    """Whether a process group of more than one rank is running (sums must be all-reduced)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def batch_stats(x: Tensor, dims: tuple[int, ...] = (0, 2, 3)) -> tuple[Tensor, Tensor, int]:
    """Per-channel biased variance, mean and element count of ``x`` over ``dims`` of the *global*
    batch (all ranks' ``x`` together; the local batch without a process group)."""
    count = x.numel() // x.shape[1]
    if not data_parallel():
        var, mean = torch.var_mean(x, dim=dims, unbiased=False)
        return var, mean, count
    sums = torch.cat([x.sum(dim=dims), (x * x).sum(dim=dims)]).double()
    sums = torch.cat([sums, torch.tensor([float(count)], dtype=torch.float64, device=x.device)])
    all_reduce_sum(sums)
    c = x.shape[1]
    n = sums[-1]
    mean = sums[:c] / n
    var = (sums[c : 2 * c] / n - mean * mean).clamp_min(0.0)
    return var.to(x.dtype), mean.to(x.dtype), int(n)


class _SyncedBatchNorm(torch.autograd.Function):
    """Training-mode batch norm over the global batch (forward and backward all-reduce sums)."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps, bn):  # noqa: D401
        var, mean, n = batch_stats(x)
        update_running_stats(bn, mean, var, n)
        invstd = torch.rsqrt(var + eps)
        xhat = (x - mean.view(1, -1, 1, 1)) * invstd.view(1, -1, 1, 1)
        ctx.save_for_backward(xhat, weight, invstd)
        ctx.n = n
        return xhat * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)

    @staticmethod
    def backward(ctx, grad):
        xhat, weight, invstd = ctx.saved_tensors
        local = torch.cat([grad.sum(dim=(0, 2, 3)), (grad * xhat).sum(dim=(0, 2, 3))])
        sums = all_reduce_sum(local.clone())
        c = weight.numel()
        mean_dy, mean_dy_xhat = sums[:c] / ctx.n, sums[c:] / ctx.n
        grad_x = (grad - mean_dy.view(1, -1, 1, 1) - xhat * mean_dy_xhat.view(1, -1, 1, 1)) * (
            weight * invstd).view(1, -1, 1, 1)
        return grad_x, local[c:], local[:c], None, None


def update_running_stats(bn: nn.modules.batchnorm._BatchNorm, mean: Tensor, var: Tensor, n: int) -> None:
    """What ``F.batch_norm(training=True)`` does to the running statistics (``var`` biased, over ``n``)."""
    if not bn.track_running_stats or bn.running_mean is None:
        return
    with torch.no_grad():
        bn.num_batches_tracked.add_(1)
        momentum = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
        unbiased = var * (n / max(1, n - 1))
        bn.running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
        bn.running_var.mul_(1 - momentum).add_(unbiased.detach(), alpha=momentum)


class SyncedBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training-mode statistics are those of all ranks' batches together
    (works on CPU with gloo); identical to ``BatchNorm2d`` without a process group or in eval."""

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and self.affine and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1):
            return super().forward(x)
        return _SyncedBatchNorm.apply(x, self.weight, self.bias, self.eps, self)


def sync_batch_norms(model: nn.Module) -> int:
    """Turn every ``BatchNorm2d`` of ``model`` into a :class:`SyncedBatchNorm2d` in place (same
    parameters, buffers and state-dict keys); returns how many."""
    count = 0
    for m in model.modules():
        if type(m) is nn.BatchNorm2d:
            m.__class__ = SyncedBatchNorm2d
            count += 1
    return count



def free_port() -> int:
    """A TCP port free on this machine now (for a local process group's rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawned(rank: int, world: int, port: int, backend: str, threads: int | None, fn, args: tuple) -> None:
    """One local rank: join the process group, run ``fn(*args)``, leave."""
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)})
    if threads:
        torch.set_num_threads(threads)
    dist.init_process_group(backend, rank=rank, world_size=world)
    try:
        fn(*args)
    finally:
        dist.destroy_process_group()


def launch_local(fn, args: tuple, nproc: int, device: torch.device, threads: int | None = None) -> None:
    """Run ``fn(*args)`` in ``nproc`` local processes forming one process group (gloo on CPU,
    NCCL on CUDA); a failure in any rank is a :class:`JaqmooError` naming it."""
    if nproc < 1:
        raise JaqmooError(f"--nproc must be >= 1 (got {nproc})")
    if device.type == "cuda" and nproc > torch.cuda.device_count():
        raise JaqmooError(f"--nproc {nproc}: only {torch.cuda.device_count()} GPUs here; use at most that many")
    try:
        mp.spawn(_spawned, args=(nproc, free_port(), backend_for(device), threads, fn, args), nprocs=nproc, join=True)
    except mp.ProcessRaisedException as exc:
        raise JaqmooError(f"data-parallel training failed in one of its {nproc} processes: "
                          f"{str(exc).strip().splitlines()[-1]}") from None


__all__ = ["DistContext", "SyncedBatchNorm2d", "agree", "all_reduce_sum", "average_gradients", "backend_for", "free_port",
           "launch_local",
           "barrier", "batch_stats", "broadcast_module", "data_parallel", "init_from_env", "mean_over_ranks", "rank_device", "shard",
           "sync_batch_norms", "update_running_stats"]
