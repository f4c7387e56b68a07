"""``random``: random search over the same genome and budget as the joint search.

The first individuals are the same uniform seed policies the joint search starts from
(``search.seed_bits``, on the default hardware) or, with ``search.init`` spread / random, the
whole first population common to every searcher; every other individual is drawn uniformly
over every gene (bits, mapping genes, hardware genes), one generation at a time, until the
budget (``population x generations`` evaluations) is spent, never beyond it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from jaqmoo.search.baselines.driver import EvaluationDriver
from jaqmoo.search.baselines.searcher import SEARCHERS, Searcher, common_first_population
from jaqmoo.search.genome import GenomeSpace


def run_random(driver: EvaluationDriver, space: GenomeSpace, seed_bits: Sequence[int], seed: int,
               first: np.ndarray | None = None) -> None:
    """Spend the driver's whole budget on the seeds (or the common ``first`` population), then
    uniformly random genomes."""
    rng = np.random.default_rng(seed)
    seeds = (space.uniform_seeds(seed_bits) if first is None else first)[: driver.remaining]
    if len(seeds):
        driver.evaluate(seeds)
    while driver.remaining > 0:
        n = min(driver.population - driver.n % driver.population, driver.remaining)
        driver.evaluate(space.random(n, rng))


def _drive(driver: EvaluationDriver, space: GenomeSpace, settings: Any, evaluator: Any, workload: Any) -> None:
    run_random(driver, space, settings.seed_bits, settings.seed, common_first_population(space, settings))


SEARCHERS.register("random", Searcher(drive=_drive))
