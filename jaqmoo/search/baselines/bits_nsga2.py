"""``bits-nsga2``: the NSGA-II of Klhufek et al. (2024) over per-layer bits only.

The hardware is fixed (the template's defaults or ``accelerator.fixed``) and the mapper
picks every layer's mapping for the decoded bits (the paper calls timeloop-mapper per
layer; jaqmoo's mapper takes its place). The genome is the per-layer (weight, activation)
bit pair of every searched layer. Their operators:

* initial population: the uniform policies of every bit-width 2..8 that both the weight and
  the activation choices allow, then random policies;
* crossover: each layer's (weight, activation) pair comes from a randomly chosen parent
  (the second child takes the other parent's), and each layer of a child is reset to
  8 bits (the highest choice) with probability 5 %;
* mutation: with probability 10 % an individual has one randomly chosen layer's bits
  changed to another random (weight, activation) pair.

Survival and mating selection are pymoo's NSGA-II (rank and crowding, binary tournament),
so the run checkpoints and resumes like the joint search.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.crossover import Crossover
from pymoo.core.mutation import Mutation

from jaqmoo.search.algorithms import SeededIntegerSampling
from jaqmoo.search.baselines.searcher import SEARCHERS, Searcher, seed_baselines
from jaqmoo.search.genome import GenomeSpace

RESET_PROBABILITY = 0.05
MUTATION_PROBABILITY = 0.10


def uniform_bits(space: GenomeSpace) -> list[int]:
    """The uniform bit-widths 2..8 that both the weight and the activation choices allow."""
    return [b for b in range(2, 9) if b in space.weight_choices and b in space.act_choices]


class LayerCrossover(Crossover):
    """Per-layer uniform crossover of (weight, activation) pairs, with a 5 % reset to 8 bits."""

    def __init__(self, n_layers: int, upper: tuple[int, int], reset: float = RESET_PROBABILITY) -> None:
        super().__init__(n_parents=2, n_offsprings=2, prob=1.0)
        self.n_layers = n_layers
        self.upper = upper  # highest weight / activation index (8 bits when allowed)
        self.reset = reset

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        _, n_matings, n_var = X.shape
        pairs = X[:, :, : 2 * self.n_layers].reshape(2, n_matings, self.n_layers, 2)
        take_first = random_state.random((n_matings, self.n_layers)) < 0.5
        child1 = np.where(take_first[..., None], pairs[0], pairs[1])
        child2 = np.where(take_first[..., None], pairs[1], pairs[0])
        out = np.array(X, copy=True)
        for k, child in enumerate((child1, child2)):
            reset = random_state.random((n_matings, self.n_layers)) < self.reset
            child = child.copy()
            child[reset] = self.upper
            out[k, :, : 2 * self.n_layers] = child.reshape(n_matings, 2 * self.n_layers)
        return out


class LayerMutation(Mutation):
    """With probability 10 %, one random layer gets another random (weight, activation) pair."""

    def __init__(self, n_layers: int, upper: tuple[int, int], prob: float = MUTATION_PROBABILITY) -> None:
        super().__init__(prob=1.0)
        self.n_layers = n_layers
        self.upper = upper
        self.p = prob

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        X = np.array(X, copy=True)
        n_pairs = (self.upper[0] + 1) * (self.upper[1] + 1)
        if n_pairs < 2 or self.n_layers == 0:
            return X
        for i in np.flatnonzero(random_state.random(len(X)) < self.p):
            j = int(random_state.integers(self.n_layers))
            current = int(X[i, 2 * j]) * (self.upper[1] + 1) + int(X[i, 2 * j + 1])
            new = int(random_state.integers(n_pairs - 1))
            new += new >= current  # any pair but the current one
            X[i, 2 * j], X[i, 2 * j + 1] = divmod(new, self.upper[1] + 1)
        return X


def make_bits_nsga2(space: GenomeSpace, pop_size: int) -> NSGA2:
    """NSGA-II with Klhufek et al.'s seeding, crossover and mutation over ``space``'s bit genes."""
    n = len(space.free_layers)
    upper = (len(space.weight_choices) - 1, len(space.act_choices) - 1)
    seeds = space.uniform_seeds(uniform_bits(space))
    algorithm = NSGA2(pop_size=pop_size, sampling=SeededIntegerSampling(seeds),
                      crossover=LayerCrossover(n, upper), mutation=LayerMutation(n, upper),
                      eliminate_duplicates=True)
    return algorithm


def bits_baselines(space: GenomeSpace, population: int, seed_bits: Sequence[int]) -> list[dict]:
    """Its own uniform seeds (:func:`uniform_bits`), stored first, whatever ``search.seed_bits`` says."""
    return seed_baselines(space, population, uniform_bits(space))


SEARCHERS.register("bits-nsga2", Searcher(algorithm=make_bits_nsga2, bits_only=True, baselines=bits_baselines))
