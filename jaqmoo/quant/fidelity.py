"""How well an accuracy estimator ranks policies against QAT ground truth (used by benchmarks).

:func:`fidelity_report` scores the same policies with an estimator and with the
ground truth and returns Kendall tau, mean absolute gap and the per-policy table.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from jaqmoo.quant.policy import FLOAT_BITS, QuantPolicy


def mean_bits(bits: Sequence[int]) -> float:
    return float(np.mean([16 if b == FLOAT_BITS else b for b in bits]))


@dataclass
class Fidelity:
    """Agreement between an estimate and the ground truth over the same policies."""

    kendall_tau: float
    mean_abs_gap: float
    table: pd.DataFrame


def compare(policies: Sequence[QuantPolicy], estimate: np.ndarray, truth: np.ndarray,
            name: str = "estimate") -> Fidelity:
    """Kendall tau and mean |estimate - truth| with a per-policy table."""
    estimate, truth = np.asarray(estimate, float), np.asarray(truth, float)
    tau = float(kendalltau(estimate, truth).statistic) if np.ptp(truth) > 0 and np.ptp(estimate) > 0 else float("nan")
    table = pd.DataFrame({
        "policy": range(len(policies)),
        "mean_w_bits": [mean_bits(p.weight_bits) for p in policies],
        "mean_a_bits": [mean_bits(p.act_bits) for p in policies],
        name: estimate,
        "qat_truth": truth,
    })
    return Fidelity(tau, float(np.mean(np.abs(estimate - truth))), table)


def timed_estimates(estimator, policies: Sequence[QuantPolicy]) -> tuple[np.ndarray, float]:
    """Per-policy estimates and the mean wall seconds per estimate (one policy per call)."""
    out = []
    t0 = time.perf_counter()
    for p in policies:
        out.append(float(estimator.estimate([p])[0]))
    return np.array(out), (time.perf_counter() - t0) / max(1, len(policies))


__all__ = ["Fidelity", "compare", "mean_bits", "timed_estimates"]
