"""``bits-nsga2``: the NSGA-II of Klhufek et al. (2024) over per-layer bits only.

The hardware is fixed (the template's defaults or ``accelerator.fixed``) and the mapper
picks every layer's mapping for the decoded bits (the paper calls timeloop-mapper per
layer; jaqmoo's mapper takes its place). The genome is the per-layer (weight, activation)
bit pair of every searched layer. Their operators, as their code states them
(``src/nsga/nsga.py`` and ``src/nsga/nsga_qat.py`` of github.com/honzastor/hw_mix_quant,
``get_init_parents``, ``generate_offsprings``, ``crossover``):

* initial population (``search.init: own``): only the uniform policies of every bit-width
  2..8 that both the weight and the activation choices allow (7 individuals for 2..8); with
  ``search.init`` spread / random the first population common to every searcher instead;
* mating: two parents drawn at random from the surviving population (no tournament);
* crossover: one child per mating; each layer's (weight, activation) pair comes from a
  randomly chosen parent, or with probability 5 % is reset to 8/8 bits (the highest choice);
* mutation: with probability 10 % a child has one randomly chosen layer's weight bits or
  (even odds) its activation bits redrawn uniformly over the allowed bit-widths.

Survival is NSGA-II's (rank and crowding) from pymoo, so the run checkpoints and resumes like
the joint search.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.crossover import Crossover
from pymoo.core.mutation import Mutation
from pymoo.operators.selection.rnd import RandomSelection

from jaqmoo.search.algorithms import SeededIntegerSampling
from jaqmoo.search.baselines.searcher import SEARCHERS, Searcher, seed_baselines
from jaqmoo.search.genome import GenomeSpace

RESET_PROBABILITY = 0.05
MUTATION_PROBABILITY = 0.10


def uniform_bits(space: GenomeSpace) -> list[int]:
    """The uniform bit-widths 2..8 that both the weight and the activation choices allow."""
    return [b for b in range(2, 9) if b in space.weight_choices and b in space.act_choices]


class LayerCrossover(Crossover):
    """One child per pair: each layer's (weight, activation) pair from a random parent, 5 % reset to 8 bits."""

    def __init__(self, n_layers: int, upper: tuple[int, int], reset: float = RESET_PROBABILITY) -> None:
        super().__init__(n_parents=2, n_offsprings=1, prob=1.0)
        self.n_layers = n_layers
        self.upper = upper  # highest weight / activation index (8 bits when allowed)
        self.reset = reset

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        _, n_matings, n_var = X.shape
        pairs = X[:, :, : 2 * self.n_layers].reshape(2, n_matings, self.n_layers, 2)
        take_first = random_state.random((n_matings, self.n_layers)) < 0.5
        child = np.where(take_first[..., None], pairs[0], pairs[1])
        child[random_state.random((n_matings, self.n_layers)) < self.reset] = self.upper
        out = np.array(X[:1], copy=True)
        out[0, :, : 2 * self.n_layers] = child.reshape(n_matings, 2 * self.n_layers)
        return out


class LayerMutation(Mutation):
    """With probability 10 %, one random layer gets its weight or (even odds) its activation bits redrawn."""

    def __init__(self, n_layers: int, upper: tuple[int, int], prob: float = MUTATION_PROBABILITY) -> None:
        super().__init__(prob=1.0)
        self.n_layers = n_layers
        self.upper = upper
        self.p = prob

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        X = np.array(X, copy=True)
        if self.n_layers == 0:
            return X
        for i in np.flatnonzero(random_state.random(len(X)) < self.p):
            j = int(random_state.integers(self.n_layers))
            which = int(random_state.integers(2))  # 0: weights, 1: activations
            X[i, 2 * j + which] = int(random_state.integers(self.upper[which] + 1))  # may repeat the current
        return X


def make_bits_nsga2(space: GenomeSpace, pop_size: int, first: np.ndarray | None = None) -> NSGA2:
    """NSGA-II with Klhufek et al.'s first population (or the common ``first``), random mating,
    crossover and mutation over ``space``'s bit genes."""
    n = len(space.free_layers)
    upper = (len(space.weight_choices) - 1, len(space.act_choices) - 1)
    initial = space.uniform_seeds(uniform_bits(space)) if first is None else first
    return NSGA2(pop_size=pop_size, sampling=SeededIntegerSampling(initial, only_seeds=first is None),
                 selection=RandomSelection(), crossover=LayerCrossover(n, upper), mutation=LayerMutation(n, upper),
                 eliminate_duplicates=True)


def bits_baselines(space: GenomeSpace, population: int, seed_bits: Sequence[int]) -> list[dict]:
    """Its own uniform seeds (:func:`uniform_bits`), stored first, whatever ``search.seed_bits`` says."""
    return seed_baselines(space, population, uniform_bits(space))


SEARCHERS.register("bits-nsga2", Searcher(algorithm=make_bits_nsga2, bits_only=True, baselines=bits_baselines))
