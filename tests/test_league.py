"""The rule that picks the search's in-loop accuracy estimator from the league and the cost."""

from __future__ import annotations

import math

import pytest

from jaqmoo.errors import JaqmooError
from jaqmoo.quant.league import LeagueEntry, choose_in_loop_estimator

SUPERNET = LeagueEntry("supernet", band_tau=0.60, tau=0.90, seconds_per_estimate=1.5)
PREDICTOR = LeagueEntry("predictor", band_tau=0.50, tau=0.88, seconds_per_estimate=1e-5, setup_seconds=300.0,
                        ranks_as="supernet")
PTQ = LeagueEntry("ptq", band_tau=0.40, tau=0.93, seconds_per_estimate=0.8)
BITS = LeagueEntry("mean_bits", band_tau=float("nan"), tau=0.80, seconds_per_estimate=0.0)
LEAGUE = [PTQ, BITS, SUPERNET, PREDICTOR]


def test_best_band_tau_that_fits_the_budget_wins():
    # 3,200 x 1.5 s = 4,800 s: the supernet fits two hours and wins on band tau (not global tau: PTQ's is higher)
    assert choose_in_loop_estimator(LEAGUE, 7200) is SUPERNET
    # one hour: the supernet (4,800 s) and PTQ (2,560 s) no longer both fit; 300 s + 0.03 s of predictor does
    pick = choose_in_loop_estimator(LEAGUE, 2000)
    assert pick is PREDICTOR and pick.winner == "supernet"
    assert PTQ.search_seconds() == pytest.approx(2560.0)
    assert choose_in_loop_estimator(LEAGUE, 3000) is PREDICTOR  # PTQ fits but ranks below the predictor


def test_nan_ranks_last_ties_break_on_global_tau_and_nothing_may_fit():
    assert choose_in_loop_estimator([BITS, PTQ], 1e6) is PTQ
    a = LeagueEntry("a", 0.5, 0.7, 0.0)
    b = LeagueEntry("b", 0.5, 0.8, 0.0)
    assert choose_in_loop_estimator([a, b], 1.0) is b
    assert choose_in_loop_estimator([SUPERNET], 10.0) is None
    assert choose_in_loop_estimator([BITS], 10.0) is BITS and math.isnan(BITS.band_tau)
    with pytest.raises(JaqmooError, match="budget_seconds"):
        choose_in_loop_estimator(LEAGUE, 0)
