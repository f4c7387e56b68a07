"""The elastic side of an experiment spec (``model.elastic``): its architecture space, the largest
sub-network's workload, predictor sampling over (architecture, bits) pairs and the joint genome.

:class:`~jaqmoo.experiment.strategy.ElasticModel` puts these together:

* :func:`elastic_space` -- the spec's :class:`~jaqmoo.models.elastic_mbv2.ElasticSpace`;
* :func:`largest_workload` -- the largest sub-network's workload (its layer names are the
  supernet's and the bits genome's);
* :func:`sample_archs` / :func:`sample_pairs` / :func:`fit_arch_predictor` -- the
  :class:`~jaqmoo.quant.elastic_estimators.ArchPredictor` fitted on supernet-scored pairs;
* :func:`arch_genome` -- the :class:`~jaqmoo.search.arch_genes.ArchGenomeSpace` over a bits +
  hardware genome of the largest network.

:func:`candidate_accuracy` scores a decoded candidate with either kind of estimator (pairs for
architecture candidates, policies otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from jaqmoo.experiment.spec import ExperimentSpec
from jaqmoo.models.elastic_space import ArchSpec, ElasticSpace, space_of_model, subnet_workload
from jaqmoo.progress import progress_bar
from jaqmoo.quant.policy import QuantPolicy
from jaqmoo.workload import Workload


def elastic_space(spec: ExperimentSpec) -> ElasticSpace | None:
    """The architecture space of ``model.elastic`` (None when the spec searches a fixed network)."""
    return space_of_model({"name": spec.model.name, "width_mult": spec.model.width_mult,
                           "elastic": spec.model.elastic_dict})


def largest_workload(space: ElasticSpace, splits: Any) -> Workload:
    """The workload of the space's largest sub-network (the supernet's layers, in order)."""
    return subnet_workload(space, space.largest(), splits.num_classes, splits.in_channels, splits.input_size)


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
    from jaqmoo.quant.elastic_estimators import ArchPredictor

    pairs = sample_pairs(supernet, n_samples, np.random.default_rng(seed), choices)
    acc = [float(estimator.estimate_pairs([p])[0])
           for p in progress_bar(pairs, desc="predictor samples", disable=not progress, leave=False)]
    return ArchPredictor(supernet, seed).fit(pairs, acc, folds=min(5, len(pairs)))


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


__all__ = ["arch_genome", "candidate_accuracy", "elastic_space", "fit_arch_predictor", "largest_workload",
           "sample_archs", "sample_pairs"]
