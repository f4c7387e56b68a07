"""Which accuracy estimator a search should use inside its loop, decided by the league.

The league (``benchmarks/accuracy_fidelity.py``) scores every estimator against the
converged QAT truth; :func:`choose_in_loop_estimator` turns its table into the decision: the
best-ranking estimator (within-band Kendall tau first, where the search decides between
policies of about one cost; global tau breaks ties) whose cost for a search of
``evaluations`` estimates fits the time budget. A predictor fitted on another estimator's
samples carries that estimator's name in ``ranks_as``: when it is picked, the win is that
estimator's (the predictor is its in-loop form).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from jaqmoo.errors import JaqmooError

#: evaluations of a default search (population 32 x 100 generations)
SEARCH_EVALUATIONS = 3200


@dataclass(frozen=True)
class LeagueEntry:
    """One estimator's league figures."""

    name: str
    band_tau: float
    tau: float
    seconds_per_estimate: float
    setup_seconds: float = 0.0  # one-off cost before the search (e.g. scoring a predictor's samples)
    ranks_as: str | None = None  # a predictor fitted on this estimator's samples

    def search_seconds(self, evaluations: int = SEARCH_EVALUATIONS) -> float:
        """Set-up plus ``evaluations`` estimates."""
        return self.setup_seconds + evaluations * self.seconds_per_estimate

    @property
    def winner(self) -> str:
        """Whose win this entry's pick is (its source estimator for a fitted predictor)."""
        return self.ranks_as or self.name


def _rank_key(e: LeagueEntry) -> tuple[float, float]:
    def finite(v: float) -> float:
        return v if math.isfinite(v) else -math.inf
    return (finite(e.band_tau), finite(e.tau))


def choose_in_loop_estimator(entries: Sequence[LeagueEntry], budget_seconds: float,
                             evaluations: int = SEARCH_EVALUATIONS) -> LeagueEntry | None:
    """The best-ranking entry whose :meth:`LeagueEntry.search_seconds` fit ``budget_seconds``;
    ranked by within-band tau, then global tau (nan ranks last); None when none fits."""
    if budget_seconds <= 0 or evaluations < 1:
        raise JaqmooError(f"in-loop estimator rule: budget_seconds must be > 0 and evaluations >= 1 "
                          f"(got {budget_seconds}, {evaluations})")
    fits = [e for e in entries if e.search_seconds(evaluations) <= budget_seconds]
    return max(fits, key=_rank_key) if fits else None


__all__ = ["LeagueEntry", "SEARCH_EVALUATIONS", "choose_in_loop_estimator"]
