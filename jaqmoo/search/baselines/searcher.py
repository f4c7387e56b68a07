"""The seed papers' searchers by name: one :class:`Searcher` each in :data:`SEARCHERS`.

A searcher module registers itself where it is defined (``SEARCHERS.register("uniform",
Searcher(...))``); :mod:`jaqmoo.search.baselines` imports the modules, so the registry's order
is the order in which they are listed there. A spec's ``search.algorithm`` may name any of them
or a pymoo algorithm (:data:`jaqmoo.search.algorithms.ALGORITHMS`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from pymoo.core.algorithm import Algorithm

from jaqmoo.registry import Registry
from jaqmoo.search.algorithms import ALGORITHM_NAMES, first_population
from jaqmoo.search.baselines.driver import EvaluationDriver
from jaqmoo.search.genome import GenomeSpace


def seed_baselines(space: GenomeSpace, population: int, seed_bits: Sequence[int]) -> list[dict]:
    """The uniform seed policies, stored first (generation 1): the joint search's ``baselines``."""
    return [{"label": f"uniform {b}-bit", "bits": b, "gen": 1, "idx": i} for i, b in enumerate(seed_bits)]


def common_first_population(space: GenomeSpace, settings: Any) -> np.ndarray | None:
    """The first population ``settings.init`` asks every searcher to start from (``population``
    genomes of ``space``, :func:`~jaqmoo.search.algorithms.first_population`), or None when each
    searcher draws its own (``init: own``)."""
    init = getattr(settings, "init", "own")
    if init == "own":
        return None
    return first_population(space, settings.population, settings.seed, init, settings.seed_bits)


#: ``(driver, space, settings, evaluator, workload) -> extra search_info`` of a driven searcher
Drive = Callable[[EvaluationDriver, GenomeSpace, Any, Any, Any], "dict | None"]


@dataclass(frozen=True)
class Searcher:
    """How one searcher runs in jaqmoo's harness.

    Exactly one of ``drive`` (a searcher run by :class:`~.driver.EvaluationDriver` within a budget
    of evaluations, ``population x generations`` unless ``budget(space)`` says otherwise) and
    ``algorithm`` (``(space, population, first) -> pymoo Algorithm``, run like the joint search;
    ``first`` is the common first population or None for the searcher's own) is given.
    ``bits_only`` searchers fix the hardware genes at their defaults and let the mapper choose
    the mappings; ``baselines`` says where the run stores its uniform-bit policies."""

    drive: Drive | None = None
    algorithm: Callable[[GenomeSpace, int, np.ndarray | None], Algorithm] | None = None
    budget: Callable[[GenomeSpace], int] | None = None
    bits_only: bool = False
    baselines: Callable[[GenomeSpace, int, Sequence[int]], list[dict]] = seed_baselines

    def __post_init__(self) -> None:
        if (self.drive is None) == (self.algorithm is None):
            raise ValueError("a Searcher has exactly one of drive= and algorithm=")

    def space(self, space: GenomeSpace) -> GenomeSpace:
        """The genome this searcher searches: ``space`` itself, or its bits only."""
        if not self.bits_only:
            return space
        fixed = {**space.hardware_fixed, **{g.name: g.choices[g.default_index] for g in space.hardware_genes}}
        return replace(space, hardware_genes=(), hardware_fixed=fixed, mapping_mode="inner")


#: the seed papers' searchers a spec's ``search.algorithm`` may name besides the pymoo algorithms
SEARCHERS: Registry[Searcher] = Registry("searcher", hint=f" (or a pymoo algorithm: {', '.join(ALGORITHM_NAMES)})")


def searcher_for(name: str) -> Searcher | None:
    """The searcher called ``name``, None for a pymoo algorithm; an unknown name is a
    :class:`~jaqmoo.errors.JaqmooError` suggesting the closest searcher."""
    return None if name in ALGORITHM_NAMES else SEARCHERS.lookup(name)


def searcher_space(algorithm: str, space: GenomeSpace) -> GenomeSpace:
    """The genome ``algorithm`` searches: ``space`` itself, or its bits only for HAQ / bits-nsga2."""
    return SEARCHERS[algorithm].space(space) if algorithm in SEARCHERS else space


def baseline_entries(algorithm: str, space: GenomeSpace, population: int, seed_bits: Sequence[int],
                     init: str = "own") -> list[dict]:
    """Where a run stores its uniform-bit policies (``meta.json`` ``baselines``: label, bits, gen, idx):
    with a common first population (``init`` spread / random) its seeds, first, for every
    searcher but ``uniform`` (which has no first population)."""
    own = algorithm in SEARCHERS and (init == "own" or algorithm == "uniform")
    entries = SEARCHERS[algorithm].baselines if own else seed_baselines
    return entries(space, population, seed_bits)


__all__ = ["SEARCHERS", "Searcher", "baseline_entries", "common_first_population", "searcher_for", "searcher_space",
           "seed_baselines"]
