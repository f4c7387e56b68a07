"""The seed papers' searchers, run in jaqmoo's harness (same evaluator, store and run folder).

* ``uniform`` (:mod:`.uniform`): every uniform weight/activation policy;
* ``random`` (:mod:`.random_search`): random search over the joint search's genome and budget;
* ``haq`` (:mod:`.haq`, :mod:`.ddpg`): HAQ's DDPG agent with the resource-budget action wall;
* ``bits-nsga2`` (:mod:`.bits_nsga2`): Klhufek et al.'s bits-only NSGA-II with their operators.

Each registers itself in :data:`SEARCHERS` (:mod:`.searcher`) and is selected by
``search.algorithm`` in a spec (or :class:`~jaqmoo.search.session.SearchSettings`); each writes
the same records, ``meta.json`` and ``history.csv`` as the joint search, so ``jaqmoo export`` /
``plot``, :func:`jaqmoo.report.load_run` and sweeps read them unchanged. ``haq`` and
``bits-nsga2`` search bits only: :func:`searcher_space` fixes the hardware genes at their
defaults and lets the mapper choose mappings (``inner`` mode).
"""

from __future__ import annotations

# the searcher modules, imported so that they register themselves, in this order (SEARCHERS' order)
# isort: off
from jaqmoo.search.baselines import uniform  # noqa: F401
from jaqmoo.search.baselines import random_search  # noqa: F401
from jaqmoo.search.baselines import haq  # noqa: F401
from jaqmoo.search.baselines import bits_nsga2  # noqa: F401
# isort: on
from jaqmoo.search.baselines.run import run_searcher
from jaqmoo.search.baselines.searcher import (
    SEARCHERS,
    Searcher,
    baseline_entries,
    common_first_population,
    searcher_for,
    searcher_space,
    seed_baselines,
)

__all__ = ["SEARCHERS", "Searcher", "baseline_entries", "common_first_population", "run_searcher", "searcher_for",
           "searcher_space", "seed_baselines"]
