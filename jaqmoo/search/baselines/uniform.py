"""``uniform``: every uniform weight/activation policy (the simplest baseline).

Each pair (w, a) of the allowed weight and activation bit-widths is one policy: every
searched layer at w-bit weights and a-bit activations, the fixed layers (first/last-layer
rules of the spec) kept as the spec says, on the template's default hardware. With bits
2..8 that is 49 policies; the search budget does not change them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from jaqmoo.search.baselines.driver import EvaluationDriver
from jaqmoo.search.baselines.searcher import SEARCHERS, Searcher
from jaqmoo.search.genome import GenomeSpace


def uniform_genomes(space: GenomeSpace) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Genomes of every uniform (w, a) policy, w-major, and their (w, a) pairs."""
    pairs = [(w, a) for w in space.weight_choices for a in space.act_choices]
    rows = [space.uniform_genome(w, a) for w, a in pairs]
    return np.asarray(rows, dtype=int).reshape(len(rows), space.n_var), pairs


def baselines(space: GenomeSpace, population: int, seed_bits: Sequence[int] = ()) -> list[dict]:
    """Where the uniform b/b-bit policies are stored (the ``baselines`` of ``meta.json``; ``seed_bits`` unused)."""
    _, pairs = uniform_genomes(space)
    return [{"label": f"uniform {w}-bit", "bits": w, "gen": n // population + 1, "idx": n % population}
            for n, (w, a) in enumerate(pairs) if w == a]


def run_uniform(driver: EvaluationDriver, space: GenomeSpace, settings: Any = None, evaluator: Any = None,
                workload: Any = None) -> None:
    """Evaluate every uniform policy (one call; the driver stores them in order)."""
    X, _ = uniform_genomes(space)
    driver.evaluate(X)


def uniform_budget(space: GenomeSpace) -> int:
    """Every uniform policy, whatever the search budget."""
    return len(uniform_genomes(space)[0])


SEARCHERS.register("uniform", Searcher(drive=run_uniform, budget=uniform_budget, baselines=baselines))
