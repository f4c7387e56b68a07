"""Architecture genes: joint (architecture, per-layer bits, hardware) genomes over an elastic supernet.

:class:`ArchGenomeSpace` puts, in front of a bits + hardware
:class:`~jaqmoo.search.genome.GenomeSpace` over the *largest* network's layers, one gene per
stage (depth: index into :meth:`ElasticSpace.depth_choices`) and two per block (expand
ratio, depthwise kernel). Decoding is deterministic and duplicate-aware: the architecture is
made canonical (:meth:`ElasticSpace.canonical`), the bits of layers that do not run are
dropped from the candidate's policy (they are ignored), and :meth:`ArchGenomeSpace.phenotype_key`
is equal for genomes that build the same network with the same bits on the same hardware.

:class:`ArchEvaluator` scores an :class:`ArchCandidate` on the workload of its decoded
sub-network (:func:`~jaqmoo.models.elastic_mbv2.subnet_workload`), so the cost model, mapper
and memory objective see exactly the layers that run; one mapper (and its caches) is shared by
every architecture. The records get readable architecture columns (depth per stage, expand and
kernel per block, MACs, parameters). Accuracy comes from an estimator with
``estimate_pairs([(arch, policy), ...])`` (:mod:`jaqmoo.quant.elastic_estimators`).

The same classes run the fixed-architecture search: ``fixed_arch`` removes the architecture
genes, so a fixed-network front and a joint front share evaluator, budget and reference point.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from jaqmoo.errors import JaqmooError
from jaqmoo.models.elastic_space import (
    ArchSpec,
    ElasticSpace,
    arch_columns,
    arch_stats,
    subnet_workload,
)
from jaqmoo.quant.policy import QuantPolicy
from jaqmoo.search.genome import Candidate, GenomeSpace
from jaqmoo.workload import Workload


@dataclass(frozen=True)
class ArchCandidate(Candidate):
    """A decoded joint genome: ``policy`` covers only the layers that run; ``full_policy`` all
    layers of the largest network (the others at the highest bits, for the supernet)."""

    arch: ArchSpec | None = None
    full_policy: QuantPolicy | None = None


class PairEstimator(Protocol):
    """Accuracy of (architecture, full-network policy) pairs."""

    def estimate_pairs(self, pairs: Sequence[tuple[ArchSpec, QuantPolicy]]) -> np.ndarray: ...


@dataclass(frozen=True)
class ArchGenomeSpace:
    """Architecture genes followed by the genes of ``bits`` (see the module doc)."""

    space: ElasticSpace
    bits: GenomeSpace
    num_classes: int
    in_channels: int
    input_size: int
    fixed_arch: ArchSpec | None = None

    def __post_init__(self) -> None:
        if self.bits.mapping_mode != "inner":
            raise JaqmooError("architecture genes need mapping mode 'inner' (the layers change with the architecture)")
        largest = subnet_workload(self.space, self.space.largest(), self.num_classes, self.in_channels, self.input_size)
        if tuple(layer.name for layer in largest.layers) != tuple(self.bits.layer_names):
            raise JaqmooError("the bits genome must cover the largest sub-network's layers, in order "
                              "(build it from ElasticSupernet.layer_names)")
        if self.fixed_arch is not None:
            object.__setattr__(self, "fixed_arch", self.space.check(self.fixed_arch))

    # ------------------------------------------------------------------ layout
    @property
    def layer_names(self) -> tuple[str, ...]:
        return self.bits.layer_names

    @property
    def mapping_mode(self) -> str:
        return "inner"

    # the bits + hardware layout, as a GenomeSpace describes it (meta.json, reports)
    @property
    def weight_choices(self) -> tuple[int, ...]:
        return self.bits.weight_choices

    @property
    def act_choices(self) -> tuple[int, ...]:
        return self.bits.act_choices

    @property
    def fixed_layers(self) -> Mapping[int, tuple[int, int]]:
        return self.bits.fixed_layers

    @property
    def hardware_genes(self) -> tuple:
        return self.bits.hardware_genes

    @property
    def hardware_fixed(self) -> Mapping[str, int]:
        return self.bits.hardware_fixed

    @property
    def mapping_candidates(self) -> int:
        return self.bits.mapping_candidates

    @property
    def last_output_bits(self) -> int:
        return self.bits.last_output_bits

    @property
    def elastic_space(self) -> dict:
        """The architecture space as plain data (``meta.json`` ``space.elastic``: part of the
        search space a resumed run must keep)."""
        return {**self.space.to_dict(), "fixed_arch": self.fixed_arch.to_dict() if self.fixed_arch else None}

    def baseline_entries(self, seed_bits: Sequence[int]) -> list[dict]:
        """Where :meth:`uniform_seeds` puts each uniform-bit seed in generation 1 (``meta.json`` ``baselines``)."""
        archs = ["largest"] if self.fixed_arch is not None else ["largest", "smallest"]
        return [{"label": f"uniform {b}-bit, {a} arch", "bits": b, "gen": 1, "idx": i * len(archs) + j}
                for i, b in enumerate(seed_bits) for j, a in enumerate(archs)]

    def _arch_choices(self) -> list[tuple[int, ...]]:
        if self.fixed_arch is not None:
            return []
        return self.space.gene_choices()

    @property
    def n_arch_genes(self) -> int:
        return len(self._arch_choices())

    @property
    def n_var(self) -> int:
        return self.n_arch_genes + self.bits.n_var

    @property
    def upper_bounds(self) -> np.ndarray:
        arch = np.asarray([len(c) - 1 for c in self._arch_choices()], dtype=int)
        return np.concatenate([arch, self.bits.upper_bounds]).astype(int)

    def gene_names(self) -> list[str]:
        if self.fixed_arch is not None:
            return self.bits.gene_names()
        sp = self.space
        return ([f"arch.depth.s{s}" for s in range(len(sp.stage_blocks))] + [f"arch.expand.b{b}" for b in range(sp.n_blocks)]
                + [f"arch.kernel.b{b}" for b in range(sp.n_blocks)] + self.bits.gene_names())

    def clip(self, X: np.ndarray) -> np.ndarray:
        """Round and clip into valid gene indices."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        if X.shape[1] != self.n_var:
            raise JaqmooError(f"genome has {X.shape[1]} genes; this search space has {self.n_var}")
        return np.clip(np.rint(X), 0, self.upper_bounds).astype(int)

    # ------------------------------------------------------------------ decode / encode
    def decode_arch(self, x: np.ndarray) -> ArchSpec:
        """The canonical architecture of genome ``x``."""
        if self.fixed_arch is not None:
            return self.fixed_arch
        return self.space.from_genes(self.clip(x)[0][: self.n_arch_genes])

    def active_names(self, arch: ArchSpec) -> tuple[str, ...]:
        wl = subnet_workload(self.space, arch, self.num_classes, self.in_channels, self.input_size)
        return tuple(layer.name for layer in wl.layers)

    def decode_one(self, x: np.ndarray) -> ArchCandidate:
        x = self.clip(x)[0]
        arch = self.decode_arch(x)
        base = self.bits.decode_one(x[self.n_arch_genes :])
        active = set(self.active_names(arch))
        top = max(max(self.bits.weight_choices), max(self.bits.act_choices))
        full = base.policy
        w = tuple(b if n in active else top for n, b in zip(full.layer_names, full.weight_bits, strict=True))
        a = tuple(b if n in active else top for n, b in zip(full.layer_names, full.act_bits, strict=True))
        full = QuantPolicy(full.layer_names, w, a, full.last_output_bits)
        sub = full.with_layers([n for n in full.layer_names if n in active], strict=False)
        return ArchCandidate(sub, base.hardware, None, arch, full)

    def decode(self, X: np.ndarray) -> list[ArchCandidate]:
        return [self.decode_one(x) for x in self.clip(X)]

    def encode(self, arch: ArchSpec, policy: QuantPolicy, hardware: Mapping[str, int] | None = None) -> np.ndarray:
        """The genome of ``arch`` with ``policy`` (over the largest network) on ``hardware``."""
        bits = self.bits.encode(policy, hardware)
        if self.fixed_arch is not None:
            return bits
        arch = self.space.check(arch)
        largest = self.space.largest()  # genes of blocks that do not run: the largest's values
        exp = tuple(e if e else largest.expand[b] for b, e in enumerate(arch.expand))
        ker = tuple(k if k else largest.kernel[b] for b, k in enumerate(arch.kernel))
        vals = list(arch.depth) + list(exp) + list(ker)
        genes = [list(c).index(v) for c, v in zip(self._arch_choices(), vals, strict=True)]
        return np.concatenate([np.asarray(genes, dtype=int), bits])

    @staticmethod
    def phenotype_key(cand: ArchCandidate) -> tuple:
        """Equal exactly when two candidates build the same network with the same bits and hardware."""
        return (cand.arch.key if cand.arch is not None else None, cand.policy.layer_names, cand.policy.weight_bits,
                cand.policy.act_bits, cand.hardware_key())

    def uniform_seeds(self, bits: Sequence[int]) -> np.ndarray:
        """The largest and the smallest architecture at each uniform bit-width (default hardware)."""
        archs = [self.fixed_arch] if self.fixed_arch is not None else [self.space.largest(), self.space.smallest()]
        rows = []
        for b in bits:
            pol = self.bits.decode_one(self.bits.uniform_seeds([b])[0]).policy
            rows += [self.encode(a, pol) for a in archs]
        return np.asarray(rows, dtype=int).reshape(len(rows), self.n_var)

    def random(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(0, self.upper_bounds + 1, size=(n, self.n_var))

    @property
    def level_genes(self) -> np.ndarray:
        """Boolean mask of the bit-width genes (after the architecture genes)."""
        return np.concatenate([np.zeros(self.n_var - self.bits.n_var, dtype=bool), self.bits.level_genes])


class ArchEvaluator:
    """Accuracy of the (architecture, bits) pair + cost of the decoded sub-network's workload."""

    def __init__(self, genome: ArchGenomeSpace, template: Any, accuracy: PairEstimator | None, metric: str = "energy",
                 batch: int = 1, mapper_options: Mapping[str, Any] | None = None,
                 accumulator_bits: int | None = None, cache_dir: str | Path | None = None) -> None:
        from jaqmoo.mapping.mapper import Mapper

        self.cache_dir = cache_dir
        """Where the warm-up's tile sets are shared (:class:`jaqmoo.mapping.cache.TileSetCache`); None: not stored."""
        self.genome = genome
        self.template = template
        self.accuracy = accuracy
        self.metric = metric
        self.batch = batch
        self.accumulator_bits = accumulator_bits
        self.mapper = Mapper(metric=metric, **dict(mapper_options or {}))
        self._joint: dict[tuple, Any] = {}
        self._acc: dict[tuple, float] = {}
        self.warmup_seconds: float | None = None
        """Seconds :meth:`prepare` took (None until it ran)."""

    def workload(self, arch: ArchSpec) -> Workload:
        g = self.genome
        return subnet_workload(g.space, arch, g.num_classes, g.in_channels, g.input_size, self.batch)

    def shape_layers(self) -> list:
        """One layer of every distinct shape any sub-network of the space runs.

        A block's layers depend only on its own expand ratio and kernel (its input and output
        channels and map size are fixed by its position; dropped blocks never change them), so
        the largest depth at every (expand, kernel) choice covers them all."""
        from jaqmoo.mapping.mapper import shape_key

        sp = self.genome.space
        big = sp.largest()
        has_e = sp.block_has_expand()
        shapes: dict[tuple, Any] = {}
        for e in sp.expand:
            for k in sp.kernel:
                arch = ArchSpec(big.depth, tuple(e if has_e[b] else 1 for b in range(sp.n_blocks)), (k,) * sp.n_blocks)
                for layer in self.workload(arch).layers:
                    shapes.setdefault(shape_key(layer), layer)
        return list(shapes.values())

    def prepare(self) -> float:
        """The inner mapper's one-time warm-up (:meth:`JointEvaluator.prepare`) over every layer
        shape of the space at once, shared by all architectures; returns its seconds."""
        if self.warmup_seconds is None:
            from jaqmoo.search.evaluation import JointEvaluator

            shapes = Workload(self.genome.space.model, tuple(self.shape_layers()))
            ev = JointEvaluator(shapes, self.template, None, self.genome.bits, self.metric,
                                accumulator_bits=self.accumulator_bits, cache_dir=self.cache_dir)
            ev.mapper = self.mapper
            self.warmup_seconds = ev.prepare()
        return self.warmup_seconds

    def _evaluator(self, arch: ArchSpec):
        from jaqmoo.search.evaluation import JointEvaluator

        if arch.key not in self._joint:
            self.prepare()
            ev = JointEvaluator(self.workload(arch), self.template, None, self.genome.bits, self.metric,
                                accumulator_bits=self.accumulator_bits)
            ev.mapper = self.mapper  # one cache of mappings for every architecture
            ev.warmup_seconds = 0.0  # its shapes are warmed up already (prepare)
            self._joint[arch.key] = ev
        return self._joint[arch.key]

    @property
    def energy_source(self) -> str:
        """Where the per-action energies come from (as :attr:`JointEvaluator.energy_source`)."""
        return self._evaluator(self.genome.space.largest()).energy_source

    def accelerator(self, hardware: dict[str, int]) -> Any:
        """The accelerator of a hardware point (as :meth:`JointEvaluator.accelerator`)."""
        return self._evaluator(self.genome.space.largest()).accelerator(hardware)

    def network_cost(self, cand: ArchCandidate) -> Any:
        """The per-layer :class:`~jaqmoo.cost.NetworkCost` of the candidate's sub-network (reports)."""
        return self._evaluator(cand.arch).network_cost(cand)

    def evaluate(self, candidates: Sequence[ArchCandidate]) -> list[dict[str, Any]]:
        keys = [ArchGenomeSpace.phenotype_key(c) for c in candidates]
        todo = {k: c for k, c in zip(keys, candidates, strict=True) if k not in self._acc}
        if todo:
            acc = self.accuracy.estimate_pairs([(c.arch, c.full_policy) for c in todo.values()])
            self._acc.update({k: float(a) for k, a in zip(todo, acc, strict=True)})
        out = []
        for k, c in zip(keys, candidates, strict=True):
            rec = dict(self._evaluator(c.arch).cost(c))
            rec.update(arch_columns(self.genome.space, c.arch))
            rec.update(arch_stats(self.workload(c.arch)))
            rec["accuracy"] = self._acc[k]
            out.append(rec)
        return out


__all__ = ["ArchCandidate", "ArchEvaluator", "ArchGenomeSpace", "PairEstimator"]
