"""Hypervolume against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from jaqmoo.search.indicators import hypervolume


def test_hypervolume_of_one_point_is_its_box_to_the_reference():
    # (1.1 - 0.5) * (1.1 - 0.5)
    assert hypervolume(np.array([[0.5, 0.5]]), [1.0, 1.0]) == pytest.approx(0.36)


def test_hypervolume_of_two_points_is_the_union_of_their_boxes():
    # normalised (0.2, 0.5) and (0.6, 0.25): 0.9 * 0.6 + 0.5 * 0.85 - overlap 0.5 * 0.6 = 0.665
    F = np.array([[0.1, 20.0], [0.3, 10.0]])
    assert hypervolume(F, [0.5, 40.0]) == pytest.approx(0.665)
    # a dominated point adds nothing; a point beyond the reference point counts for nothing
    assert hypervolume(np.vstack([F, [[0.4, 30.0], [0.01, 50.0]]]), [0.5, 40.0]) == pytest.approx(0.665)


def test_hypervolume_in_three_objectives():
    # (0.1, 0.1, 0.1): 1.0^3; plus (0.0, 0.0, 0.6) adds 1.1 * 1.1 * 0.5 - its overlap 1.0 * 1.0 * 0.5
    F = np.array([[0.1, 0.1, 0.1], [0.0, 0.0, 0.6]])
    assert hypervolume(F, [1.0, 1.0, 1.0]) == pytest.approx(1.0 + 0.605 - 0.5)


def test_paired_p_value_is_the_exact_one_sided_wilcoxon():
    from jaqmoo.search.indicators import paired_p_value

    x = np.array([0.5, 0.6, 0.7, 0.8, 0.9])
    # all five differences positive: p = 1 / 2**5
    assert paired_p_value(x, x - 0.01 * np.arange(1, 6)) == pytest.approx(1 / 32)
    # all five negative: p = 1 (the one-sided test never favours the wrong direction)
    assert paired_p_value(x, x + 0.01 * np.arange(1, 6)) == pytest.approx(1.0)
    # ranks 1..5 with the smallest difference negative: W+ = 14, P(W+ >= 14) = 2 / 32
    assert paired_p_value(x, x - np.array([-0.01, 0.02, 0.03, 0.04, 0.05])) == pytest.approx(2 / 32)
    assert np.isnan(paired_p_value(x, x)) and np.isnan(paired_p_value(x[:1], x[:1] - 1))
