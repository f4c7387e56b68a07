"""Hypervolume of a front in a fixed normalisation (so generations and resumes compare)."""

from __future__ import annotations

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

#: reference point in normalised objective space (objectives divided by their scale)
REFERENCE = 1.1


def hv_scale(F: np.ndarray) -> list[float]:
    """Per-objective scale: the largest finite value in ``F`` (the seeds' generation)."""
    F = np.asarray(F, dtype=float)
    finite = np.where(np.isfinite(F) & (F < 1e29), F, np.nan)
    with np.errstate(all="ignore"):
        scale = np.nanmax(np.abs(finite), axis=0) if len(F) else np.ones(F.shape[1])
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    return [float(s) for s in scale]


def non_dominated(F: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows of ``F`` (minimisation)."""
    F = np.asarray(F, dtype=float)
    if len(F) == 0:
        return np.zeros(0, dtype=int)
    return np.asarray(NonDominatedSorting().do(F, only_non_dominated_front=True), dtype=int)


def hypervolume(F: np.ndarray, scale: list[float]) -> float:
    """Hypervolume of the rows of ``F`` (feasible, minimisation) after dividing by ``scale``."""
    F = np.asarray(F, dtype=float)
    if len(F) == 0:
        return 0.0
    Fn = F / np.asarray(scale)
    Fn = Fn[np.all(Fn < REFERENCE, axis=1)]
    if len(Fn) == 0:
        return 0.0
    return float(HV(ref_point=np.full(F.shape[1], REFERENCE))(Fn))


def paired_p_value(x: np.ndarray, y: np.ndarray) -> float:
    """One-sided p-value that ``x`` is larger than ``y``, paired row by row (same seeds):
    the exact Wilcoxon signed-rank test (:func:`scipy.stats.wilcoxon`, ``alternative="greater"``).
    NaN when there are fewer than two pairs or every difference is zero (no test is possible).
    With n pairs the smallest attainable p is 2**-n (0.03125 for five seeds)."""
    from scipy.stats import wilcoxon

    d = np.asarray(x, dtype=float) - np.asarray(y, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) < 2 or not np.any(d != 0):
        return float("nan")
    return float(wilcoxon(d, alternative="greater", zero_method="wilcox", method="exact").pvalue)
