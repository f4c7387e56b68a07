"""An experiment spec with ``model.elastic``: the elastic supernet, its estimators, the joint genome.

:func:`jaqmoo.experiment.run_experiment` calls these when the spec searches the architecture
too (``model.elastic: {depth: [...], expand: [...], kernel: [...]}``):

* :func:`elastic_space` -- the spec's :class:`~jaqmoo.models.elastic_mbv2.ElasticSpace`;
* :func:`largest_workload` -- the largest sub-network's workload (its layer names are the
  supernet's and the bits genome's);
* :func:`obtain_elastic_accuracy` -- the elastic supernet (loaded from ``accuracy.checkpoint`` /
  ``accuracy.cache_dir`` after its identity, architecture space included, is checked; else
  trained there), the search estimator (the supernet, or an :class:`ArchPredictor` fitted on
  supernet-scored (architecture, bits) pairs) and the supernet estimator that re-scores the front;
* :func:`arch_genome` -- the :class:`~jaqmoo.search.arch_genes.ArchGenomeSpace` over a bits +
  hardware genome of the largest network.

Every estimator here answers ``estimate_pairs([(arch, full_policy), ...])`` and is memoised per
phenotype (:class:`PairCache`); :func:`candidate_accuracy` scores a decoded candidate with either
kind of estimator (pairs for architecture candidates, policies otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaqmoo.models.elastic_mbv2 import ArchSpec, ElasticSpace, subnet_workload
from jaqmoo.quant.policy import QuantPolicy
from jaqmoo.search.spec import ExperimentSpec
from jaqmoo.workload import Workload


def elastic_space(spec: ExperimentSpec) -> ElasticSpace | None:
    """The architecture space of ``model.elastic`` (None when the spec searches a fixed network)."""
    return elastic_space_of({"name": spec.model.name, "width_mult": spec.model.width_mult,
                             "elastic": spec.model.elastic_dict})


def elastic_space_of(model: dict) -> ElasticSpace | None:
    """The same from the plain ``model`` section of a validated spec (``spec.to_dict()["model"]``,
    as ``meta.json`` records it)."""
    d = model.get("elastic")
    if d is None:
        return None
    return ElasticSpace(tuple(d["depth"]), tuple(d["expand"]), tuple(d["kernel"]),
                        float(model.get("width_mult", 1.0)), str(model["name"]))


def largest_workload(space: ElasticSpace, splits: Any) -> Workload:
    """The workload of the space's largest sub-network (the supernet's layers, in order)."""
    return subnet_workload(space, space.largest(), splits.num_classes, splits.in_channels, splits.input_size)


class PairCache:
    """Memoises ``estimate_pairs`` per phenotype (canonical architecture, bits of the layers that run)."""

    def __init__(self, estimator: Any, space: ElasticSpace, active: Any) -> None:
        self.estimator = estimator
        self.space = space
        self.active = active  # arch -> names of the layers that run
        self.cache: dict[tuple, float] = {}
        self.calls = 0

    def key(self, arch: ArchSpec, policy: QuantPolicy) -> tuple:
        arch = self.space.canonical(arch)
        sub = policy.with_layers(self.active(arch), strict=False)
        return (arch.key, sub.weight_bits, sub.act_bits)

    def estimate_pairs(self, pairs: Sequence[tuple[ArchSpec, QuantPolicy]]) -> np.ndarray:
        keys = [self.key(a, p) for a, p in pairs]
        todo: dict[tuple, tuple[ArchSpec, QuantPolicy]] = {}
        for k, pair in zip(keys, pairs, strict=True):
            if k not in self.cache and k not in todo:
                todo[k] = pair
        if todo:
            values = np.asarray(self.estimator.estimate_pairs(list(todo.values())), dtype=float).reshape(-1)
            self.calls += len(todo)
            self.cache.update({k: float(v) for k, v in zip(todo, values, strict=True)})
        return np.asarray([self.cache[k] for k in keys], dtype=float)


class NoGradPairs:
    """An :class:`~jaqmoo.quant.elastic_estimators.ElasticSupernetEstimator` run without autograd."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def estimate_pairs(self, pairs: Sequence[tuple[ArchSpec, QuantPolicy]]) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.estimator.estimate_pairs(pairs)


def sample_archs(space: ElasticSpace, n: int, rng: np.random.Generator) -> list[ArchSpec]:
    """``n`` architectures spread over the space's sizes: the largest and the smallest first, then
    alternately one drawn like a search genome's bits (one level over every architecture gene's
    range plus per-gene noise, :func:`~jaqmoo.quant.sampling.spread_levels`: small, medium and
    large networks all appear) and one with uniformly random genes (as the search's first
    population draws its architecture genes: per-block variety at medium size)."""
    from jaqmoo.quant.sampling import spread_levels

    upper = np.asarray([len(c) - 1 for c in space.gene_choices()], dtype=float)
    archs = [space.largest(), space.smallest()][:n]
    rest = n - len(archs)
    spread = iter(spread_levels(rng, (rest + 1) // 2, np.zeros_like(upper), upper))
    for i in range(rest):
        archs.append(space.from_genes(next(spread)) if i % 2 == 0 else space.sample(rng))
    return archs


def sample_pairs(supernet: Any, n: int, rng: np.random.Generator,
                 choices: Sequence[int]) -> list[tuple[ArchSpec, QuantPolicy]]:
    """``n`` (architecture, bits) pairs to fit a predictor on: architectures from
    :func:`sample_archs` (largest and smallest first), bits from
    :func:`~jaqmoo.quant.estimators.sample_policies` (uniform anchors first, highest and lowest
    bit-width first, so the largest network at the top bits and the smallest at the lowest
    anchor both ends; then level + noise policies as the search draws them)."""
    from jaqmoo.quant.estimators import sample_policies

    archs = sample_archs(supernet.space, n, rng)
    return list(zip(archs, sample_policies(supernet, n, rng, choices), strict=True))


def fit_arch_predictor(supernet: Any, estimator: Any, n_samples: int, choices: Sequence[int], seed: int,
                       progress: bool = False) -> Any:
    """An :class:`~jaqmoo.quant.elastic_estimators.ArchPredictor` fitted on ``n_samples``
    supernet-scored pairs (its ``fit_error`` holds the cross-validated MAE and Kendall tau)."""
    from tqdm.auto import tqdm

    from jaqmoo.quant.elastic_estimators import ArchPredictor

    pairs = sample_pairs(supernet, n_samples, np.random.default_rng(seed), choices)
    acc = [float(estimator.estimate_pairs([p])[0])
           for p in tqdm(pairs, desc="predictor samples", disable=not progress, leave=False)]
    return ArchPredictor(supernet, seed).fit(pairs, acc, folds=min(5, len(pairs)))


def obtain_elastic_accuracy(spec: ExperimentSpec, splits: Any, layer_names: Sequence[str], default_checkpoint: Path,
                            progress: bool = True) -> Any:
    """The accuracy side of an elastic search (see the module doc); an
    :class:`~jaqmoo.search.accuracy.AccuracySetup` whose estimators answer ``estimate_pairs``."""
    from jaqmoo.quant.elastic_estimators import ElasticSupernetEstimator
    from jaqmoo.quant.estimators import EvalData
    from jaqmoo.search.accuracy import (
        PREDICTOR_KIND,
        AccuracySetup,
        cached_predictor,
        checked_supernet,
        supernet_bits,
    )

    space = elastic_space(spec)
    net, timings, fixed, ckpt, meta = checked_supernet(spec, splits, layer_names, default_checkpoint, progress)
    meta["elastic"] = space.to_dict()
    data = EvalData.from_splits(splits, spec.accuracy.val_images, seed=spec.seed, device=next(net.parameters()).device)
    active = net.active_layer_names
    supernet_est = PairCache(NoGradPairs(ElasticSupernetEstimator(net, data)), space, active)
    if spec.accuracy.estimator == "supernet":
        return AccuracySetup(supernet_est, None, fixed, timings, meta)
    predictor, timings["predictor_fit"] = cached_predictor(
        spec, default_checkpoint, ckpt, f"arch-{PREDICTOR_KIND}",
        lambda: fit_arch_predictor(net, supernet_est, spec.accuracy.predictor_samples, supernet_bits(spec),
                                   spec.seed, progress),
        extra_key={"elastic": space.to_dict()})
    meta["predictor_fit_error"] = getattr(predictor, "fit_error", None)
    return AccuracySetup(PairCache(predictor, space, active), supernet_est, fixed, timings, meta)


def arch_genome(space: ElasticSpace, bits: Any, splits: Any) -> Any:
    """The joint genome: architecture genes in front of ``bits`` (a GenomeSpace of the largest network)."""
    from jaqmoo.search.arch_genes import ArchGenomeSpace

    return ArchGenomeSpace(space, bits, splits.num_classes, splits.in_channels, splits.input_size)


def candidate_accuracy(estimator: Any, cand: Any) -> float:
    """Accuracy of one decoded candidate: ``estimate_pairs`` for an architecture candidate
    (:class:`~jaqmoo.search.arch_genes.ArchCandidate`), ``estimate`` of its policy otherwise."""
    arch = getattr(cand, "arch", None)
    if arch is not None:
        return float(estimator.estimate_pairs([(arch, cand.full_policy)])[0])
    return float(estimator.estimate([cand.policy])[0])


__all__ = ["NoGradPairs", "PairCache", "arch_genome", "candidate_accuracy", "elastic_space", "elastic_space_of",
           "fit_arch_predictor",
           "largest_workload", "obtain_elastic_accuracy", "sample_archs", "sample_pairs"]
