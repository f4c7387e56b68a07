"""Network-level hardware cost: every layer's best mapping, summed (the API of the search and CLI).

:func:`network_cost` maps each layer of a :class:`~jaqmoo.workload.Workload` onto an
accelerator at its bit-widths (from a :class:`~jaqmoo.quant.policy.QuantPolicy`, or one
``bits`` triple for all layers) with a :class:`~jaqmoo.mapping.mapper.Mapper` and returns
a :class:`NetworkCost`: a per-layer table and the totals the search optimizes.

Units: energy in pJ, cycles of the accelerator's clock, latency in seconds, EDP in
pJ x cycles (the per-layer mapper's EDP summed the same way: total energy x total cycles),
memory in bits (packed: a ``w``-bit tensor in a ``W``-bit word of the outermost level takes
``ceil(values / floor(W / w))`` words), area in mm^2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.spec import TENSORS, Accelerator
from jaqmoo.mapping.mapper import METRICS, Mapper, MappingResult
from jaqmoo.mapping.mapping import MappingBatch
from jaqmoo.quant.policy import QuantPolicy
from jaqmoo.workload import Layer, Workload


@dataclass(frozen=True)
class LayerCost:
    """One layer's best mapping and its cost."""

    name: str
    kind: str
    shape: str
    """``N G K C P Q R S`` as ``K32 C3 P112 Q112 R3 S3 /2`` (unit dims omitted, stride after /)."""
    bits: tuple[int, int, int] | None
    """(weight, input, output) bits, or None for each level's datawidth."""
    mapping: str
    """The best mapping in one line."""
    energy_pj: float
    energy_by_level: dict[str, float]
    cycles: int
    utilization: float
    macs: int
    weight_bits_packed: int
    input_bits_packed: int
    output_bits_packed: int
    evaluated: int
    """Mappings evaluated to find it (0: served from the mapper's cache)."""
    psum_energy_by_level: dict[str, float] = field(default_factory=dict)
    """Access energy of partial sums per level (Outputs at levels still reducing them, moved at
    accumulator bits); part of ``energy_by_level``."""
    energy_by_tensor: dict[str, dict[str, float]] = field(default_factory=dict)
    """Access energy (pJ) per storage level and tensor: ``{level: {Weights, Inputs, Outputs}}``
    (leakage and MAC energy are not per tensor: they are in ``energy_by_level`` only)."""
    problem: Layer | None = field(default=None, compare=False, repr=False)
    """The layer itself (its loop bounds and strides), for writing it out (``--timeloop``)."""
    mapping_batch: MappingBatch | None = field(default=None, compare=False, repr=False)
    """The chosen mapping itself (a batch of one), for writing it out (``--timeloop``)."""


@dataclass
class NetworkCost:
    """Per-layer costs and network totals of one (workload, accelerator, bits) point."""

    workload: str
    accelerator: str
    metric: str
    layers: list[LayerCost] = field(default_factory=list)
    energy_pj: float = 0.0
    cycles: int = 0
    latency_s: float = 0.0
    edp: float = 0.0
    """Total energy (pJ) x total cycles."""
    weight_memory_bits: int = 0
    activation_memory_bits: int = 0
    """Peak over layers of packed input + output activation bits."""
    area_mm2: float = 0.0
    energy_source: str = ""
    feasible: bool = True
    reason: str = ""
    """Why the point is infeasible ('' when feasible)."""

    @classmethod
    def start(cls, workload_name: str, accel: Accelerator, metric: str) -> NetworkCost:
        """An empty total for ``workload_name`` on ``accel``, to :meth:`add` layers to."""
        return cls(workload_name, accel.name, metric, area_mm2=accel.area_um2 * 1e-6,
                   energy_source=accel.energy_source)

    def add(self, lc: LayerCost, accel: Accelerator) -> None:
        """Append one layer's cost and update every total."""
        self.layers.append(lc)
        self.energy_pj += lc.energy_pj
        self.cycles += lc.cycles
        self.weight_memory_bits += lc.weight_bits_packed
        self.activation_memory_bits = max(self.activation_memory_bits,
                                          lc.input_bits_packed + lc.output_bits_packed)
        self.latency_s = self.cycles * accel.cycle_seconds
        self.edp = self.energy_pj * self.cycles

    def mark_infeasible(self, reason: str) -> NetworkCost:
        """Flag the point infeasible with ``reason`` and infinite totals."""
        self.feasible = False
        self.reason = reason
        self.energy_pj = self.edp = self.latency_s = math.inf
        self.cycles = 2**62
        return self

    @property
    def memory_bits(self) -> int:
        """Packed weights plus peak packed activations."""
        return self.weight_memory_bits + self.activation_memory_bits

    @property
    def energy_uj(self) -> float:
        return self.energy_pj * 1e-6

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def level_energy(self) -> list[tuple[str, float, float]]:
        """``(level, energy pJ, partial-sum access energy pJ)`` summed over the layers (plus ``mac``)."""
        totals: dict[str, list[float]] = {}
        for lc in self.layers:
            for name, e in lc.energy_by_level.items():
                row = totals.setdefault(name, [0.0, 0.0])
                row[0] += e
                row[1] += lc.psum_energy_by_level.get(name, 0.0)
        return [(name, e, p) for name, (e, p) in totals.items()]

    def level_table(self) -> str:
        """Energy per level with the partial-sum share, one line per level."""
        lines = [f"  {'level':28s} {'energy uJ':>11s} {'psum uJ':>10s} {'psum share':>10s}"]
        for name, e, p in self.level_energy():
            if e == 0 and p == 0:  # dummy levels (fan-outs only) and idle ones
                continue
            share = f"{100 * p / e:9.1f}%" if e > 0 else f"{'-':>10s}"
            lines.append(f"  {name:28s} {e * 1e-6:11.3f} {p * 1e-6:10.3f} {share}")
        return "\n".join(lines)

    def to_dataframe(self):
        """The per-layer table as a pandas DataFrame (one row per layer)."""
        import pandas as pd

        rows = []
        for lc in self.layers:
            w, i, o = lc.bits if lc.bits is not None else (None, None, None)
            rows.append({
                "layer": lc.name, "kind": lc.kind, "shape": lc.shape, "w_bits": w, "in_bits": i, "out_bits": o,
                "mapping": lc.mapping, "energy_uj": lc.energy_pj * 1e-6, "cycles": lc.cycles,
                "utilization": lc.utilization, "macs": lc.macs, "weight_kib_packed": lc.weight_bits_packed / 8192,
                "input_kib_packed": lc.input_bits_packed / 8192, "output_kib_packed": lc.output_bits_packed / 8192,
                **{f"energy_uj_{k}": v * 1e-6 for k, v in lc.energy_by_level.items()},
                **{f"psum_energy_uj_{k}": v * 1e-6 for k, v in lc.psum_energy_by_level.items()},
            })
        return pd.DataFrame(rows)

    def summary(self) -> str:
        """Totals in a few lines."""
        if not self.feasible:
            return f"{self.workload} on {self.accelerator}: INFEASIBLE: {self.reason}"
        return (
            f"{self.workload} on {self.accelerator} ({len(self.layers)} layers, {self.macs / 1e6:.1f} M MACs, "
            f"best by {self.metric})\n"
            f"  energy {self.energy_pj * 1e-6:.3f} uJ, cycles {self.cycles}, latency {self.latency_s * 1e3:.3f} ms, "
            f"EDP {self.edp:.4g} pJ*cycles\n"
            f"  weights {self.weight_memory_bits / 8192:.1f} KiB packed, peak activations "
            f"{self.activation_memory_bits / 8192:.1f} KiB packed, area {self.area_mm2:.3f} mm^2\n"
            f"  energy source: {self.energy_source}"
        )


def layer_shape(layer: Layer) -> str:
    """Compact shape string, e.g. ``G32 P112 Q112 R3 S3 /2``."""
    parts = [f"{d}{getattr(layer, d)}" for d in ("N", "G", "K", "C", "P", "Q", "R", "S") if getattr(layer, d) > 1]
    if layer.stride_h > 1 or layer.stride_w > 1:
        parts.append(f"/{layer.stride_h}" if layer.stride_h == layer.stride_w else f"/{layer.stride_h}x{layer.stride_w}")
    return " ".join(parts) or "1"


def layer_cost(layer: Layer, accel: Accelerator, bits: tuple[int, int, int] | None, costs,
               j: int, mapping: str, evaluated: int, batch: MappingBatch | None = None) -> LayerCost:
    """The :class:`LayerCost` of row ``j`` of a :class:`~jaqmoo.mapping.model.Costs` (``batch``:
    the mapping itself, a batch of one, kept on the result for exports)."""
    names = tuple(lvl.name for lvl in accel.levels)
    # packed into the outermost level's words: whole vectors (jaqmoo), word-bits words (the fork)
    word = accel.levels[0].datawidth if accel.convention == "fork" else accel.levels[0].width
    wb, ib, ob = bits if bits is not None else (accel.levels[0].datawidth,) * 3
    return LayerCost(
        name=layer.name, kind=layer.kind, shape=layer_shape(layer), bits=bits, mapping=mapping,
        energy_pj=float(costs.energy[j]),
        energy_by_level={**{n: float(e) for n, e in zip(names, costs.energy_by_level[j], strict=True)},
                         "mac": float(costs.mac_energy[j])},
        cycles=int(costs.cycles[j]), utilization=float(costs.utilization[j]), macs=layer.macs,
        weight_bits_packed=packed_bits(layer.weight_count, wb, word),
        input_bits_packed=packed_bits(layer.input_count, ib, word),
        output_bits_packed=packed_bits(layer.output_count, ob, word),
        evaluated=evaluated,
        psum_energy_by_level={n: float(e) for n, e in zip(names, costs.psum_energy[j], strict=True)},
        energy_by_tensor={n: {t: float(e) for t, e in zip(TENSORS, costs.energy_by_tensor[j, lvl], strict=True)}
                          for lvl, n in enumerate(names)},
        problem=layer, mapping_batch=batch,
    )


def packed_bits(values: int, bits: int, word_bits: int) -> int:
    """Bits that ``values`` values of ``bits`` bits take when packed into ``word_bits``-bit words."""
    per_word = word_bits // bits
    if per_word < 1:  # wider than a word: each value takes whole words
        return values * math.ceil(bits / word_bits) * word_bits
    return math.ceil(values / per_word) * word_bits


def _layer_bits(policy: QuantPolicy | None, bits, workload: Workload) -> list[tuple[int, int, int] | None]:
    if policy is None:
        if bits is None:
            return [None] * len(workload)
        try:
            triple = tuple(int(b) for b in bits)
        except (TypeError, ValueError):
            raise JaqmooError(f"bits must be (weight, input, output) integers (got {bits!r})") from None
        if len(triple) != 3 or min(triple) < 1:
            raise JaqmooError(f"bits must be three positive integers (weight, input, output), got {bits!r}")
        return [triple] * len(workload)
    names = [layer.name for layer in workload.layers]
    policy = policy.with_layers(names)
    return [policy.tensor_bits(i) for i in range(len(names))]


def network_cost(workload: Workload, accel, policy: QuantPolicy | None = None,
                 bits: Sequence[int] | None = (8, 8, 8), metric: str = "energy", mapper: Mapper | None = None,
                 raise_on_infeasible: bool = True, progress: bool = False) -> NetworkCost:
    """Map every layer of ``workload`` onto ``accel`` and total the costs.

    Args:
        workload: the layers.
        accel: a :class:`~jaqmoo.hardware.spec.Accelerator`.
        policy: per-layer bits (overrides ``bits``); its layer names must match the workload's.
        bits: (weight, input, output) bits for every layer when there is no policy;
            None stores every tensor at each level's datawidth (Timeloop's behaviour).
        metric: what each layer's mapper minimizes: energy, edp or cycles.
        mapper: a :class:`Mapper` whose caches to use (keep one across a search).
        raise_on_infeasible: raise :class:`JaqmooError` when a layer has no feasible mapping
            (naming the layer, the level and the words needed vs available); if False,
            return a cost with ``feasible=False``, ``reason`` set and infinite totals.
        progress: show a tqdm bar over the layers.
    """
    if metric not in METRICS:
        raise JaqmooError(f"metric must be one of {', '.join(METRICS)} (got {metric!r})")
    mapper = mapper if mapper is not None else Mapper(metric=metric)
    layer_bits = _layer_bits(policy, bits, workload)
    out = NetworkCost.start(workload.name, accel, metric)
    layers = workload.layers
    if progress:
        from jaqmoo.progress import progress_bar

        layers = progress_bar(layers, desc=f"mapping {workload.name}", unit="layer")
    for layer, lb in zip(layers, layer_bits, strict=True):
        try:
            result: MappingResult = mapper.best(layer, accel, lb, metric=metric)
        except JaqmooError as exc:
            if raise_on_infeasible:
                raise
            return out.mark_infeasible(str(exc))
        out.add(layer_cost(layer, accel, lb, result.costs, 0, result.description, result.evaluated,
                           result.mapping), accel)
    return out


def policy_file_mappings(path: str | Path) -> dict[str, Any]:
    """Layer name -> mapping directives of a policy file (``layers.<name>.mapping``; see
    :mod:`jaqmoo.reporting.policy_file`), read as plain YAML data."""
    from jaqmoo.strict import load_yaml_text
    from jaqmoo.textfile import read_utf8

    path = Path(path)
    if not path.is_file():
        raise JaqmooError(f"policy file {path} does not exist; write one with `jaqmoo export RUN --point K --policy-file F`")
    data = load_yaml_text(read_utf8(path, "a YAML policy file"), str(path))
    layers = data.get("layers") if isinstance(data, dict) else None
    if not isinstance(layers, dict):
        raise JaqmooError(f"{path}: expected a mapping with 'layers' (layer name -> {{w, a, mapping}})")
    return {str(n): e["mapping"] for n, e in layers.items() if isinstance(e, dict) and "mapping" in e}


def network_cost_of_mappings(workload: Workload, accel: Accelerator, policy: QuantPolicy,
                             mappings: dict[str, Any], metric: str = "energy", source: str = "policy file") -> NetworkCost:
    """The cost of ``workload`` on ``accel`` at ``policy``'s bits with each layer's mapping
    given (no search): ``mappings`` maps a layer name to its Timeloop mapping directives
    (:func:`jaqmoo.mapping.timeloop_map.mapping_directives`, as ``jaqmoo export --policy-file``
    writes them). A missing layer, a mapping that does not cover its layer or does not fit the
    buffers is an error naming the layer."""
    from jaqmoo.mapping.mapping import describe
    from jaqmoo.mapping.model import evaluate
    from jaqmoo.mapping.timeloop_map import parse_mapping

    missing = [layer.name for layer in workload.layers if layer.name not in mappings]
    if missing:
        raise JaqmooError(f"{source}: layers.{missing[0]}.mapping is missing ({len(missing)} layer(s) without a "
                          "mapping); export the point again with `jaqmoo export RUN --point K --policy-file F`")
    names = tuple(lvl.name for lvl in accel.levels)
    layer_bits = _layer_bits(policy, None, workload)
    out = NetworkCost.start(workload.name, accel, metric)
    for layer, lb in zip(workload.layers, layer_bits, strict=True):
        batch = parse_mapping(mappings[layer.name], accel, layer, f"{source}: layers.{layer.name}.mapping")
        costs = evaluate(layer, accel, batch, lb)
        if not bool(costs.feasible[0]):
            raise JaqmooError(f"{source}: layers.{layer.name}.mapping does not fit this accelerator at bits {lb}: "
                              f"{costs.reason(0, names)}; check the hardware parameters (--set wins over the file's)")
        out.add(layer_cost(layer, accel, lb, costs, 0, describe(batch, 0, names), 1, batch), accel)
    return out


__all__ = ["LayerCost", "NetworkCost", "layer_cost", "layer_shape", "network_cost", "network_cost_of_mappings",
           "packed_bits", "policy_file_mappings"]
