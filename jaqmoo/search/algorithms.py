"""pymoo algorithms by name, configured for integer genomes and seeded first populations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from pymoo.core.algorithm import Algorithm
from pymoo.core.sampling import Sampling
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.util.ref_dirs import get_reference_directions

from jaqmoo.quant.sampling import LEVEL_SPREAD, spread_levels
from jaqmoo.registry import Registry


class SeededIntegerSampling(Sampling):
    """First population: the given seed genomes, then random integer genomes.

    With ``level_genes`` (a boolean mask of the bit-width genes), each random genome draws
    its own precision level, a uniform fraction ``f`` of every bit gene's range, and each of
    its bit genes is ``f * upper`` plus Gaussian noise (``spread`` of the range), rounded and
    clipped. The first population then spans the whole energy axis, from near-2-bit to
    near-8-bit policies with per-layer variety, instead of clustering every random policy
    around the middle bit-width (what independent uniform genes do to the mean of 50 layers).
    The other genes (hardware, mapping) stay uniform. With ``only_seeds`` the first population
    is the seeds alone, even when they are fewer than the population.
    """

    def __init__(self, seeds: np.ndarray | None = None, level_genes: np.ndarray | None = None,
                 spread: float = LEVEL_SPREAD, only_seeds: bool = False) -> None:
        super().__init__()
        self.only_seeds = only_seeds  # the seeds alone, however few (Klhufek et al.'s uniform ladder)
        self.seeds = np.zeros((0, 0), dtype=int) if seeds is None else np.asarray(seeds, dtype=int)
        self.level_genes = None if level_genes is None else np.asarray(level_genes, dtype=bool)
        self.spread = spread

    def _do(self, problem, n_samples, *args, random_state=None, **kwargs):
        xl, xu = problem.bounds()
        n_rand = 0 if self.only_seeds else max(n_samples - len(self.seeds), 0)
        rand = random_state.integers(xl.astype(int), xu.astype(int) + 1, size=(n_rand, problem.n_var))
        if self.level_genes is not None and self.level_genes.any() and n_rand:
            rand[:, self.level_genes] = spread_levels(random_state, n_rand, xl[self.level_genes],
                                                      xu[self.level_genes], self.spread)
        seeds = self.seeds[:n_samples].reshape(-1, problem.n_var) if len(self.seeds) else np.zeros((0, problem.n_var), int)
        return np.vstack([seeds, rand]).astype(int)


#: ``search.init``: each searcher's own first population, or one common to every searcher
INITS = ("own", "spread", "random")


def first_population(space: Any, n: int, seed: int, init: str, seed_bits: Any = ()) -> np.ndarray:
    """A first population of ``n`` genomes that every searcher of ``space``'s problem can share.

    The uniform ``seed_bits`` policies come first (default hardware), then ``n - len(seed_bits)``
    drawn genomes: with ``init="spread"`` their bit genes are spread over precision levels
    (:func:`~jaqmoo.quant.sampling.spread_levels`, as the joint search's own sampler draws them),
    with ``init="random"`` every bit gene is uniform over its choices. The bit genes come from
    one random stream and the other genes (mapping, hardware; uniform) from another, both fixed
    by ``seed``: a bits-only space (:func:`jaqmoo.search.baselines.searcher_space`) gets exactly
    the same bit policies as the joint space. ``init="own"`` is refused here (the searcher then
    builds its own)."""
    from jaqmoo.errors import JaqmooError

    if init not in INITS[1:]:
        raise JaqmooError(f"first_population: init {init!r} is not one of {list(INITS[1:])} "
                          "(with 'own' each searcher draws its own first population)")
    seeds = space.uniform_seeds(tuple(seed_bits))[:n]
    m = n - len(seeds)
    upper = np.asarray(space.upper_bounds, dtype=int)
    bit = np.asarray(space.level_genes, dtype=bool)
    bits_rng, rest_rng = np.random.default_rng([seed, 1]), np.random.default_rng([seed, 2])
    rows = np.zeros((m, space.n_var), dtype=int)
    if init == "spread":
        rows[:, bit] = spread_levels(bits_rng, m, np.zeros(int(bit.sum())), upper[bit], LEVEL_SPREAD)
    else:
        rows[:, bit] = bits_rng.integers(0, upper[bit] + 1, size=(m, int(bit.sum())))
    rows[:, ~bit] = rest_rng.integers(0, upper[~bit] + 1, size=(m, int((~bit).sum())))
    return np.vstack([seeds.reshape(-1, space.n_var), rows]).astype(int)


def _operators() -> dict:
    return dict(
        crossover=SBX(prob=0.9, eta=3.0, vtype=float, repair=RoundingRepair()),
        mutation=PM(eta=3.0, vtype=float, repair=RoundingRepair()),
        eliminate_duplicates=True,
    )


def _ref_dirs(n_obj: int, pop_size: int) -> np.ndarray:
    """Das-Dennis directions, as many as fit in the population."""
    partitions = 1
    while True:
        nxt = get_reference_directions("das-dennis", n_obj, n_partitions=partitions + 1)
        if len(nxt) > pop_size:
            break
        partitions += 1
        if partitions > 200:
            break
    return get_reference_directions("das-dennis", n_obj, n_partitions=partitions)


#: ``(pop_size, n_obj, sampling, operators) -> Algorithm`` by name: the pymoo algorithms a spec's
#: ``search.algorithm`` may name (the seed papers' searchers are :data:`jaqmoo.search.baselines.SEARCHERS`)
ALGORITHMS: Registry[Callable[..., Algorithm]] = Registry("algorithm")


@ALGORITHMS.register("nsga2")
def _nsga2(pop_size: int, n_obj: int, sampling: Any, ops: dict) -> Algorithm:
    from pymoo.algorithms.moo.nsga2 import NSGA2

    return NSGA2(pop_size=pop_size, sampling=sampling, **ops)


@ALGORITHMS.register("nsga3")
def _nsga3(pop_size: int, n_obj: int, sampling: Any, ops: dict) -> Algorithm:
    from pymoo.algorithms.moo.nsga3 import NSGA3

    return NSGA3(ref_dirs=_ref_dirs(n_obj, pop_size), pop_size=pop_size, sampling=sampling, **ops)


@ALGORITHMS.register("unsga3")
def _unsga3(pop_size: int, n_obj: int, sampling: Any, ops: dict) -> Algorithm:
    from pymoo.algorithms.moo.unsga3 import UNSGA3

    return UNSGA3(ref_dirs=_ref_dirs(n_obj, pop_size), pop_size=pop_size, sampling=sampling, **ops)


@ALGORITHMS.register("smsemoa")
def _smsemoa(pop_size: int, n_obj: int, sampling: Any, ops: dict) -> Algorithm:
    from pymoo.algorithms.moo.sms import SMSEMOA

    return SMSEMOA(pop_size=pop_size, sampling=sampling, **ops)


@ALGORITHMS.register("spea2")
def _spea2(pop_size: int, n_obj: int, sampling: Any, ops: dict) -> Algorithm:
    from pymoo.algorithms.moo.spea2 import SPEA2, SPEA2Survival

    # a fresh survival: pymoo's default instance is shared by every SPEA2 of the process, and its
    # normalisation state leaks from one run into the next (two seeded runs would differ)
    return SPEA2(pop_size=pop_size, sampling=sampling, survival=SPEA2Survival(normalize=True), **ops)


@ALGORITHMS.register("rnsga2")
def _rnsga2(pop_size: int, n_obj: int, sampling: Any, ops: dict) -> Algorithm:
    from pymoo.algorithms.moo.rnsga2 import RNSGA2

    return RNSGA2(ref_points=np.zeros((1, n_obj)), pop_size=pop_size, sampling=sampling, **ops)


ALGORITHM_NAMES = tuple(ALGORITHMS)


def make_algorithm(name: str, pop_size: int, n_obj: int, seeds: np.ndarray | None = None,
                   level_genes: np.ndarray | None = None) -> Algorithm:
    """A pymoo algorithm ``name`` with integer-safe operators, ``seeds`` in its first population
    and, with ``level_genes``, random genomes spread over precision levels (:class:`SeededIntegerSampling`)."""
    return _make_algorithm(name, pop_size, n_obj, seeds, level_genes)


def _make_algorithm(name: str, pop_size: int, n_obj: int, seeds: np.ndarray | None,
                    level_genes: np.ndarray | None) -> Algorithm:
    factory = ALGORITHMS.lookup(name)
    return factory(pop_size, n_obj, SeededIntegerSampling(seeds, level_genes), _operators())
