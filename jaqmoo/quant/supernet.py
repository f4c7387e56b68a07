"""The bit-switchable supernet: wrap a model, switch policies, save and load checkpoints.

:func:`build_supernet` builds a supported CNN with :func:`jaqmoo.models.build_model` and
replaces every ``nn.Conv2d`` / ``nn.Linear`` *in place* by a
:class:`~jaqmoo.quant.layers.QuantConv2d` / :class:`~jaqmoo.quant.layers.QuantLinear`
sharing its weights (the model's source is never edited). The layer order is
:func:`jaqmoo.workload.quantizable_layers`'s, so a :class:`QuantPolicy` lines up with the
layers of :func:`jaqmoo.workload.extract_workload` for the same model.

A checkpoint (``torch.save`` of plain data) holds the :class:`SupernetMeta` (everything
needed to rebuild the model), the weights and, when saved by training, the optimizer
state for resuming. :func:`load_supernet` rebuilds the model and checks that the weights
fit it, so a checkpoint of another model or a damaged file gives a :class:`JaqmooError`
(:func:`jaqmoo.quant.checkpoints.load_supernet` reads either kind, fixed or elastic).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from jaqmoo.errors import JaqmooError
from jaqmoo.models import build_model
from jaqmoo.quant.fakequant import LSQ_PATHS, MSE_SAMPLES, int_range, mse_init_step, sample_columns
from jaqmoo.quant.layers import FoldedConvBN, QuantConv2d, QuantLinear, n_sensitive
from jaqmoo.quant.policy import FLOAT_BITS, SUPPORTED_BITS, QuantPolicy, check_bits
from jaqmoo.safe_write import atomic_write_with
from jaqmoo.workload import quantizable_layers

CHECKPOINT_FORMAT = "jaqmoo-supernet"
CHECKPOINT_VERSION = 1


@dataclass
class SupernetMeta:
    """What a checkpoint records to rebuild its supernet."""

    model: str
    dataset: str
    num_classes: int
    in_channels: int
    input_size: int
    width_mult: float = 1.0
    bits: tuple[int, ...] = SUPPORTED_BITS
    per_channel: bool = True
    csq_fraction: float = 0.0
    fixed_first_last: int | None = None
    layer_names: tuple[str, ...] = field(default_factory=tuple)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.input_size, self.input_size)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["bits"] = list(self.bits)
        d["layer_names"] = list(self.layer_names)
        return d

    @classmethod
    def from_dict(cls, data: dict, source: str) -> SupernetMeta:
        try:
            d = dict(data)
            d["bits"] = tuple(int(b) for b in d["bits"])
            d["layer_names"] = tuple(d.get("layer_names", ()))
            return cls(**d)
        except (TypeError, KeyError, ValueError) as exc:
            raise JaqmooError(f"{source}: checkpoint metadata is incomplete or invalid ({exc})") from exc


def wrap_model(model: nn.Module, bits: Sequence[int] = SUPPORTED_BITS, per_channel: bool = True) -> list[str]:
    """Replace every Conv2d/Linear of ``model`` in place by its quantized wrapper.

    Returns the layer names in :func:`quantizable_layers` order.
    """
    names = [n for n, _ in quantizable_layers(model)]
    for name in names:
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        old = getattr(parent, attr)
        if isinstance(old, QuantConv2d | QuantLinear):
            continue
        cls = QuantConv2d if isinstance(old, nn.Conv2d) else QuantLinear
        setattr(parent, attr, cls.from_module(old, tuple(bits), per_channel))
    return names


class Supernet(nn.Module):
    """A model whose Conv2d/Linear layers switch bit-widths according to a policy."""

    def __init__(self, model: nn.Module, meta: SupernetMeta) -> None:
        super().__init__()
        names = wrap_model(model, meta.bits, meta.per_channel)
        if meta.layer_names and tuple(meta.layer_names) != tuple(names):
            raise JaqmooError(
                f"supernet metadata lists {len(meta.layer_names)} layers but model {meta.model!r} "
                f"has {len(names)}; the checkpoint belongs to another model"
            )
        meta.layer_names = tuple(names)
        self.model = model
        self.meta = meta
        self.layer_names: tuple[str, ...] = tuple(names)
        self._layers = tuple(model.get_submodule(n) for n in names)  # a plain tuple: not registered twice
        self.set_csq_fraction(meta.csq_fraction)
        self.set_policy(QuantPolicy.uniform(names, max(meta.bits)))

    # ----------------------------------------------------------------- layers and policies
    @property
    def layers(self) -> list[QuantConv2d | QuantLinear]:
        """The quantized layers in policy order (also while CSQ blocks or folded batch-norms wrap them)."""
        return list(self._layers)

    @property
    def bits(self) -> tuple[int, ...]:
        return tuple(self.meta.bits)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def fixed_layers(self) -> dict[int, int]:
        """Layer index -> bits forced by the first/last-layer rule (empty when none)."""
        b = self.meta.fixed_first_last
        if b is None:
            return {}
        return {0: b, len(self.layer_names) - 1: b}

    def apply_rules(self, policy: QuantPolicy) -> QuantPolicy:
        """``policy`` with the first/last-layer rule applied (unchanged when there is none)."""
        fixed = self.fixed_layers()
        if not fixed:
            return policy
        w, a = list(policy.weight_bits), list(policy.act_bits)
        for i, b in fixed.items():
            w[i], a[i] = b, b
        return QuantPolicy(policy.layer_names, tuple(w), tuple(a), policy.last_output_bits)

    def check_policy(self, policy: QuantPolicy) -> QuantPolicy:
        """Validate ``policy`` against this supernet; raise :class:`JaqmooError` if it does not fit."""
        if not isinstance(policy, QuantPolicy):
            raise JaqmooError(f"expected a QuantPolicy, got {type(policy).__name__}")
        if len(policy) != len(self.layer_names):
            raise JaqmooError(
                f"policy has {len(policy)} layers but supernet {self.meta.model!r} has "
                f"{len(self.layer_names)}; build the policy from Supernet.layer_names"
            )
        policy = policy.with_layers(self.layer_names, strict=False)
        allowed = set(self.bits) | {FLOAT_BITS}
        for name, w, a in zip(policy.layer_names, policy.weight_bits, policy.act_bits, strict=True):
            for kind, b in (("weight", w), ("activation", a)):
                check_bits(b, f"layer {name!r} {kind} bits")
                if b not in allowed:
                    raise JaqmooError(
                        f"layer {name!r} {kind} bits {b}: this supernet was trained for bits "
                        f"{list(self.bits)} (and float); pick one of those"
                    )
        for i, b in self.fixed_layers().items():
            if (policy.weight_bits[i], policy.act_bits[i]) != (b, b):
                raise JaqmooError(
                    f"layer {self.layer_names[i]!r}: this supernet keeps the first and last layers at "
                    f"{b} bits; use Supernet.apply_rules(policy) or set them to {b}/{b}"
                )
        return policy

    def set_policy(self, policy: QuantPolicy) -> None:
        """Switch every layer to the policy's bits (validated by :meth:`check_policy`)."""
        policy = self.check_policy(policy)
        for layer, w, a in zip(self.layers, policy.weight_bits, policy.act_bits, strict=True):
            layer.set_bits(w, a)
        self._last_output_bits = policy.last_output_bits

    def policy(self) -> QuantPolicy:
        """The policy currently applied."""
        layers = self.layers
        return QuantPolicy(self.layer_names, tuple(m.w_bits for m in layers), tuple(m.a_bits for m in layers),
                           getattr(self, "_last_output_bits", 8))

    def uniform_policy(self, w: int, a: int | None = None) -> QuantPolicy:
        """All layers at ``w``/``a`` bits (first/last-layer rule applied)."""
        return self.apply_rules(QuantPolicy.uniform(self.layer_names, w, a))

    def random_policy(self, rng: np.random.Generator, choices: Sequence[int] | None = None) -> QuantPolicy:
        """Every layer's weight and activation bits drawn uniformly from ``choices``."""
        choices = np.asarray(choices if choices is not None else self.bits)
        n = len(self.layer_names)
        w = tuple(int(b) for b in rng.choice(choices, n))
        a = tuple(int(b) for b in rng.choice(choices, n))
        return self.apply_rules(QuantPolicy(self.layer_names, w, a, 8))

    # ----------------------------------------------------------------------------- CSQ
    def set_csq_fraction(self, fraction: float) -> None:
        """CSQ: fraction of each layer's output channels trained quantization-aware (0: CSQ off,
        every channel on the LSQ path; see :mod:`jaqmoo.quant.csq`)."""
        if not 0.0 <= fraction <= 1.0:
            raise JaqmooError(f"csq_fraction must be in [0, 1] (got {fraction})")
        self.meta.csq_fraction = float(fraction)
        for layer in self.layers:
            layer.csq_fraction = float(fraction)

    def set_lsq_path(self, path: str) -> None:
        """Train with LSQ path ``path``: ``"fused"`` (the default), or one of the references with the
        same values and gradients, ``"lean"`` (the previous default) and ``"autograd"`` (standard
        autograd ops; most memory and time)."""
        if path not in LSQ_PATHS:
            raise JaqmooError(f"lsq path {path!r}: use one of {sorted(LSQ_PATHS)}")
        for layer in self.layers:
            layer.lsq_path = path

    def set_batch_shards(self, n: int) -> None:
        """Data-parallel training over ``n`` processes, each with ``1 / n`` of every batch: LSQ's
        activation step-gradient scale then counts the whole batch (as one process would)."""
        for layer in self.layers:
            layer.batch_shards = int(n)

    def set_sensitive_channels(self, scores: Sequence[Tensor]) -> None:
        """Mark, per layer, the top ``csq_fraction`` output channels by ``scores`` as CSQ-trained."""
        for layer, score in zip(self.layers, scores, strict=True):
            if not layer.csq_supported or layer.csq_fraction <= 0.0:
                layer.sensitive = torch.zeros(0, dtype=torch.long, device=layer.weight.device)
                continue
            k = n_sensitive(score.numel(), layer.csq_fraction)
            idx = torch.topk(score.float(), k).indices.sort().values
            layer.sensitive = idx.to(layer.weight.device)

    @torch.no_grad()
    def calibrate_steps(self, batch: Tensor) -> None:
        """Set every layer's LSQ step sizes, for every candidate bit-width, to the values that
        minimise the quantization error (:func:`~jaqmoo.quant.fakequant.mse_init_step`) of the
        current float weights (per output channel when per-channel) and of the layer's input
        activations on ``batch`` (one float forward with batch-norms on batch statistics, as in
        training, and dropout off; running statistics and everything else are left as they were).

        Quantized training calls it where it starts from float weights: steps made when the
        layers were wrapped belong to the weights of that moment (random ones, for a network
        trained in float afterwards), and LSQ learns steps too slowly to recover within a few
        epochs. Layers that do not run on ``batch`` (an elastic supernet's inactive blocks)
        keep their activation steps.
        """
        inputs: dict[int, Tensor] = {}
        hooks = [layer.register_forward_pre_hook(lambda _m, args, i=i: inputs.__setitem__(i, args[0]))
                 for i, layer in enumerate(self.layers)]
        policy, was_training = self.policy(), self.training
        bns = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        saved = [{k: v.clone() for k, v in m.state_dict().items()} for m in bns]
        for layer in self.layers:  # every layer in float, whatever first/last-layer rule the supernet has
            layer.set_bits(FLOAT_BITS, FLOAT_BITS)
        self.eval()
        for m in bns:  # batch statistics, as training will see them (running ones may belong to another policy)
            m.train()
        try:
            self.model(batch)
        finally:
            for h in hooks:
                h.remove()
            for m, state in zip(bns, saved, strict=True):
                m.load_state_dict(state)
            self.set_policy(policy)
            self.train(was_training)
        picks: dict[int, Tensor] = {}  # one subsample per activation size, shared by every bit-width
        for i, layer in enumerate(self.layers):
            x = inputs.get(i)
            if x is not None and int(layer.a_signed) < 0:
                layer.a_signed.fill_(1 if bool((x < 0).any()) else 0)
            if x is not None and x.numel() > MSE_SAMPLES:  # the sample mse_init_step would draw, drawn once
                if x.numel() not in picks:
                    picks[x.numel()] = sample_columns(x.numel(), MSE_SAMPLES).to(x.device)
                x = x.reshape(-1)[picks[x.numel()]]
            for j, b in enumerate(layer.bits):
                layer.w_step[j] = mse_init_step(layer.weight, *int_range(b, True), dim=0 if layer.per_channel else None)
                if x is not None:
                    layer.a_step[j] = mse_init_step(x, *int_range(b, int(layer.a_signed) == 1))
                    layer.a_step_ready[j] = True

    # ------------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def recalibrate_bn(self, batches: Iterable[Tensor]) -> None:
        """Re-estimate every BatchNorm's running statistics for the current policy."""
        bns = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        saved = [(m.momentum, m.training) for m in bns]
        was_training = self.training
        self.eval()
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative moving average over the calibration batches
            m.train()
        try:
            for x in batches:
                self.model(x)
        finally:
            for m, (mom, tr) in zip(bns, saved, strict=True):
                m.momentum = mom
                m.train(tr)
            self.train(was_training)

    @torch.no_grad()
    def accuracy(self, images: Tensor, labels: Tensor, batch_size: int = 128) -> float:
        """Top-1 accuracy (fraction) on ``images`` in eval mode."""
        was_training = self.training
        self.eval()
        correct = 0
        folded = _fold_batch_norms(self.model)
        try:
            for i in range(0, len(images), batch_size):
                out = self.model(images[i : i + batch_size])
                correct += int((out.argmax(1) == labels[i : i + batch_size]).sum())
        finally:
            _unfold_batch_norms(folded)
            self.train(was_training)
        return correct / max(1, len(images))

    # ------------------------------------------------------------------------ checkpoints
    def state_for_checkpoint(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "meta": self.meta.to_dict(),
            "state_dict": self.model.state_dict(),
        }

    def save(self, path: str | Path, **extra: object) -> Path:
        """Write a checkpoint atomically (``extra`` entries are stored alongside)."""
        return save_checkpoint(path, {**self.state_for_checkpoint(), **extra})


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """``torch.save`` to a temporary file, then rename (a crash or a full disk never leaves half a
    file or a temporary one behind: :func:`jaqmoo.safe_write.atomic_write_with`)."""
    return atomic_write_with(path, lambda tmp: torch.save(payload, tmp), "the supernet checkpoint")


def build_supernet(
    model: str,
    num_classes: int,
    in_channels: int,
    input_size: int,
    width_mult: float = 1.0,
    dataset: str = "",
    bits: Sequence[int] = SUPPORTED_BITS,
    per_channel: bool = True,
    csq_fraction: float = 0.0,
    fixed_first_last: int | None = None,
) -> Supernet:
    """Build ``model`` with :func:`build_model` and wrap it into a :class:`Supernet`."""
    bits = tuple(sorted({check_bits(int(b), "supernet bits") for b in bits}))
    if FLOAT_BITS in bits or not bits:
        raise JaqmooError(f"supernet bits must be a non-empty subset of {list(SUPPORTED_BITS)} (got {list(bits)})")
    if fixed_first_last is not None and fixed_first_last not in bits and fixed_first_last != FLOAT_BITS:
        raise JaqmooError(f"fixed_first_last={fixed_first_last} is not among the supernet bits {list(bits)}")
    net = build_model(model, num_classes, in_channels, input_size, width_mult)
    meta = SupernetMeta(model, dataset, num_classes, in_channels, input_size, float(width_mult), bits,
                        per_channel, float(csq_fraction), fixed_first_last)
    return Supernet(net, meta)


def checkpoint_epochs(path: str | Path) -> int:
    """Epochs a training checkpoint at ``path`` has completed (-1 when there is no file)."""
    path = Path(path)
    return int(read_checkpoint(path).get("epoch", 0)) if path.is_file() else -1


def read_checkpoint(path: str | Path) -> dict:
    """Load and sanity-check a checkpoint file; :class:`JaqmooError` when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise JaqmooError(f"checkpoint {path} does not exist; train one with `jaqmoo supernet train --out {path}`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged files
        raise JaqmooError(
            f"checkpoint {path} is corrupted or not a jaqmoo supernet checkpoint (torch.load failed: "
            f"{type(exc).__name__}); retrain it with `jaqmoo supernet train` or point to the right file"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise JaqmooError(f"checkpoint {path} is not a jaqmoo supernet checkpoint (no '{CHECKPOINT_FORMAT}' marker)")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise JaqmooError(f"checkpoint {path} has format version {payload.get('version')}; this jaqmoo reads {CHECKPOINT_VERSION}")
    for key in ("meta", "state_dict"):
        if key not in payload:
            raise JaqmooError(f"checkpoint {path} lacks '{key}'; it is incomplete")
    return payload


def supernet_from_payload(payload: dict, source: str, expect_model: str | None = None) -> Supernet:
    meta = SupernetMeta.from_dict(payload["meta"], source)
    if expect_model is not None and meta.model != expect_model:
        raise JaqmooError(f"checkpoint {source} is for model {meta.model!r}, not {expect_model!r}")
    net = build_model(meta.model, meta.num_classes, meta.in_channels, meta.input_size, meta.width_mult)
    supernet = Supernet(net, meta)
    state = payload["state_dict"]
    for name, layer in zip(supernet.layer_names, supernet.layers, strict=True):
        saved = state.get(f"{name}.sensitive") if isinstance(state, dict) else None
        if isinstance(saved, Tensor) and saved.dim() == 1:
            layer.sensitive = torch.zeros(saved.numel(), dtype=torch.long)
    try:
        supernet.model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:3]
        raise JaqmooError(
            f"checkpoint {source}: its weights do not fit model {meta.model!r} "
            f"(width_mult {meta.width_mult}); it was saved from another model or is damaged: {' '.join(first)}"
        ) from exc
    except (TypeError, AttributeError) as exc:
        raise JaqmooError(f"checkpoint {source}: 'state_dict' is not a weight dictionary ({exc})") from exc
    return supernet


__all__ = [
    "checkpoint_epochs",
    "Supernet",
    "SupernetMeta",
    "build_supernet",
    "read_checkpoint",
    "save_checkpoint",
    "wrap_model",
]


def _fold_batch_norms(model: nn.Module) -> list[tuple[nn.Sequential, int, nn.Module, nn.Module]]:
    """Replace every (QuantConv2d, BatchNorm2d) pair inside an ``nn.Sequential`` by a
    :class:`FoldedConvBN` and an identity, for evaluation; returns what to put back."""
    folded = []
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if FoldedConvBN.can_fold(conv, bn):
                folded.append((seq, i, conv, bn))
    for seq, i, conv, bn in folded:
        seq[i] = FoldedConvBN(conv, bn)
        seq[i + 1] = nn.Identity()
    return folded


def _unfold_batch_norms(folded: list[tuple[nn.Sequential, int, nn.Module, nn.Module]]) -> None:
    """Undo :func:`_fold_batch_norms`."""
    for seq, i, conv, bn in folded:
        seq[i] = conv
        seq[i + 1] = bn
