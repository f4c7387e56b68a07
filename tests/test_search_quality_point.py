"""search_quality's one-point RESULT logic: both ratios come from one front point."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("search_quality", ROOT / "benchmarks" / "search_quality.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


FRONT = pd.DataFrame({
    "point": [0, 1, 2, 3, 4],
    "accuracy": [0.900, 0.897, 0.896, 0.880, 0.899],
    "energy_ratio": [1.2, 2.4, 1.9, 3.5, 2.4],
    "memory_ratio": [1.5, 1.8, 3.1, 4.0, 1.7],
})


def test_one_point_gives_both_ratios_even_when_best_energy_and_best_memory_differ():
    pick = _module().pick_point
    row = pick(FRONT, acc8=0.900, tolerance=0.005)
    # within tolerance: points 0, 1, 2, 4 (3 is 2 points below). Best energy: 1 and 4 (2.4, tie ->
    # the more accurate, 4); best memory within tolerance is point 2 (3.1) — never combined.
    assert int(row["point"]) == 4
    assert (row["energy_ratio"], row["memory_ratio"]) == (2.4, 1.7)
    ok = FRONT[FRONT["accuracy"] >= 0.895]
    assert ok["memory_ratio"].max() == 3.1 and row["memory_ratio"] != ok["memory_ratio"].max()


def test_tolerance_is_measured_against_uniform_8bit_and_can_exclude_everything():
    pick = _module().pick_point
    assert int(pick(FRONT, acc8=0.880, tolerance=0.005)["point"]) == 3  # 8-bit lower: point 3 now qualifies
    assert int(pick(FRONT, acc8=0.900, tolerance=0.0)["point"]) == 0  # only the exact-accuracy point
    assert pick(FRONT, acc8=0.95, tolerance=0.005) is None
