"""The seed papers' searchers, run in jaqmoo's harness (same evaluator, store and run folder).

* ``uniform`` (:mod:`.uniform`): every uniform weight/activation policy;
* ``random`` (:mod:`.random_search`): random search over the joint search's genome and budget;
* ``haq`` (:mod:`.haq`, :mod:`.ddpg`): HAQ's DDPG agent with the resource-budget action wall;
* ``bits-nsga2`` (:mod:`.bits_nsga2`): Klhufek et al.'s bits-only NSGA-II with their operators.

Each is selected by ``search.algorithm`` in a spec (or :class:`~jaqmoo.search.session.SearchSettings`)
and writes the same records, ``meta.json`` and ``history.csv`` as the joint search, so
``jaqmoo export`` / ``plot``, :func:`jaqmoo.report.load_run` and sweeps read them unchanged.
``haq`` and ``bits-nsga2`` search bits only: :func:`searcher_space` fixes the hardware genes
at their defaults and lets the mapper choose mappings (``inner`` mode).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from jaqmoo.search.genome import GenomeSpace

SEARCHERS = ("uniform", "random", "haq", "bits-nsga2")
#: searchers that are not pymoo algorithms (run by :class:`.driver.EvaluationDriver`)
DRIVEN = ("uniform", "random", "haq")
#: searchers whose genome is the per-layer bits only (hardware fixed, mapper inside)
BITS_ONLY = ("haq", "bits-nsga2")


def searcher_space(algorithm: str, space: GenomeSpace) -> GenomeSpace:
    """The genome ``algorithm`` searches: ``space`` itself, or its bits only for HAQ / bits-nsga2."""
    if algorithm not in BITS_ONLY:
        return space
    fixed = {**space.hardware_fixed, **{g.name: g.choices[g.default_index] for g in space.hardware_genes}}
    return replace(space, hardware_genes=(), hardware_fixed=fixed, mapping_mode="inner")


def baseline_entries(algorithm: str, space: GenomeSpace, population: int, seed_bits: Sequence[int]) -> list[dict]:
    """Where a run stores its uniform-bit policies (``meta.json`` ``baselines``: label, bits, gen, idx)."""
    if algorithm == "uniform":
        from jaqmoo.search.baselines.uniform import baselines

        return baselines(space, population)
    if algorithm == "haq":
        w, a = max(space.weight_choices), max(space.act_choices)
        return [{"label": f"uniform {w}-bit", "bits": w, "gen": 1, "idx": 0}] if w == a else []
    if algorithm == "bits-nsga2":
        from jaqmoo.search.baselines.bits_nsga2 import uniform_bits

        seed_bits = uniform_bits(space)
    return [{"label": f"uniform {b}-bit", "bits": b, "gen": 1, "idx": i} for i, b in enumerate(seed_bits)]
