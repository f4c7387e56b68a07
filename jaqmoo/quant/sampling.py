"""Level + noise draws of per-layer bit-widths, shared by the search and the accuracy predictors.

A search over per-layer bits visits policies spread over the whole precision axis: its first
population (:class:`jaqmoo.search.algorithms.SeededIntegerSampling`) draws, per genome, one
level ``f`` uniform in [0, 1] of every bit gene's range and sets each bit gene to
``f * range`` plus Gaussian noise of :data:`LEVEL_SPREAD` of the range, rounded and clipped
(:func:`spread_levels`). The predictors' training samples
(:func:`jaqmoo.quant.estimators.sample_policies`) are drawn the same way
(:func:`level_policies`), so the predictor is fitted where the search looks instead of on
independent uniform genes (whose mean over 50 layers sits at the middle bit-width and whose
few 2-bit layers put most samples near chance accuracy).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from jaqmoo.errors import JaqmooError
from jaqmoo.quant.policy import QuantPolicy

#: Gaussian noise per gene around a genome's level, as a fraction of the gene's index range
LEVEL_SPREAD = 0.15


def spread_levels(rng: np.random.Generator, n: int, lower: np.ndarray, upper: np.ndarray,
                  spread: float = LEVEL_SPREAD) -> np.ndarray:
    """``n`` rows of integer genes in ``[lower, upper]``: one uniform level per row, per-gene noise."""
    lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    level = rng.uniform(0.0, 1.0, size=(n, 1))
    width = upper - lower
    values = lower + level * width + rng.normal(0.0, spread, size=(n, len(upper))) * width
    return np.clip(np.rint(values), lower, upper).astype(int)


def level_policies(supernet: Any, n: int, rng: np.random.Generator, choices: Sequence[int],
                   spread: float = LEVEL_SPREAD) -> list[QuantPolicy]:
    """``n`` policies over ``supernet.layer_names``, each drawn as the search's first population
    draws its bit genes: one level per policy over the indices of the sorted ``choices``, every
    layer's weight and activation bits that level plus noise (:func:`spread_levels`); the
    supernet's rules (``apply_rules``: fixed first/last layers) applied."""
    choices = sorted(int(b) for b in choices)
    if not choices:
        raise JaqmooError("level_policies: choices is empty; give at least one bit-width")
    names = tuple(supernet.layer_names)
    genes = 2 * len(names)
    idx = spread_levels(rng, n, np.zeros(genes), np.full(genes, len(choices) - 1), spread)
    bits = np.asarray(choices)[idx]
    return [supernet.apply_rules(QuantPolicy(names, tuple(int(b) for b in row[: len(names)]),
                                             tuple(int(b) for b in row[len(names):]), 8)) for row in bits]


__all__ = ["LEVEL_SPREAD", "level_policies", "spread_levels"]
