"""search_quality's one-point RESULT logic: both ratios come from one front point."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pandas as pd
import pytest

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


def test_selection_on_validation_report_on_test_and_nan_when_nothing_qualifies():
    mod = _module()
    table = FRONT.assign(test_accuracy=[0.880, 0.870, 0.899, 0.800, 0.860])
    # selected on validation ("accuracy"): point 4, as above; its drop is reported on test: 0.90 - 0.86
    fig = mod.headline(table, acc8_val=0.900, acc8_test=0.900, tolerance=0.005)
    assert fig["point"] == 4 and fig["drop_points"] == pytest.approx(4.0) and fig["val_drop_points"] == pytest.approx(0.1)
    line = mod.result_line(fig, qat_drop=0.25, seconds=12.0)
    assert line == ("RESULT energy_ratio_vs_8bit=2.400 memory_ratio_vs_8bit=1.700 accuracy_drop_points=4.00 "
                    "qat_accuracy_drop_points=0.25 seconds=12.0")
    # nothing within the tolerance: nan everywhere, never uniform 8-bit's 1.000 / 0.00
    none = mod.headline(table, acc8_val=0.95, acc8_test=0.95, tolerance=0.005)
    assert none["point"] == -1 and all(math.isnan(none[k]) for k in ("energy_ratio", "memory_ratio", "drop_points"))
    line = mod.result_line(none, qat_drop=float("nan"), seconds=3.0)
    assert line == ("RESULT energy_ratio_vs_8bit=nan memory_ratio_vs_8bit=nan accuracy_drop_points=nan "
                    "qat_accuracy_drop_points=nan seconds=3.0")
    assert mod.headline(table.iloc[:0], 0.9, 0.9, 0.005)["point"] == -1  # an empty front
