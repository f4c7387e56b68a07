"""How well an accuracy estimator ranks policies against QAT ground truth (used by benchmarks).

* :func:`compare` — Kendall tau, mean absolute gap and the per-policy table of an estimate
  against the ground truth over the same policies;
* :func:`bootstrap_kendall_tau` — a percentile bootstrap confidence interval for that tau;
* :func:`heterogeneous_policies` and :func:`stratify_by_energy` — the policies a fidelity
  test scores: mixed per-layer bits (no near-uniform policy, which is easy to rank), one
  per equal-width stratum of the policy's energy, so the whole energy range is covered
  evenly instead of piling up in the middle as independent per-layer draws do.
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


def bootstrap_kendall_tau(estimate: Sequence[float], truth: Sequence[float], n_boot: int = 2000,
                          level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Kendall tau and its ``level`` percentile-bootstrap interval ``(tau, low, high)``.

    Policies are resampled with replacement ``n_boot`` times (seeded); resamples whose
    estimate or truth is constant (tau undefined) are skipped.
    """
    est, tru = np.asarray(estimate, float), np.asarray(truth, float)
    if est.shape != tru.shape or est.ndim != 1 or len(est) < 3:
        raise ValueError(f"need two equal-length 1-D samples of >= 3 values (got {est.shape}, {tru.shape})")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1) (got {level})")
    tau = float(kendalltau(est, tru).statistic)
    rng = np.random.default_rng(seed)
    taus = []
    for _ in range(n_boot):
        i = rng.integers(0, len(est), len(est))
        if np.ptp(est[i]) > 0 and np.ptp(tru[i]) > 0:
            taus.append(kendalltau(est[i], tru[i]).statistic)
    taus = np.asarray(taus, float)
    taus = taus[np.isfinite(taus)]
    if len(taus) == 0:
        return tau, float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    return tau, float(np.quantile(taus, alpha)), float(np.quantile(taus, 1.0 - alpha))


def near_uniform(policy: QuantPolicy, share: float = 0.75) -> bool:
    """True when at least ``share`` of the policy's weight and activation bits are one value."""
    genes = list(policy.weight_bits) + list(policy.act_bits)
    _, counts = np.unique(genes, return_counts=True)
    return counts.max() >= share * len(genes)


def heterogeneous_policies(layer_names: Sequence[str], n: int, rng: np.random.Generator, choices: Sequence[int],
                           apply_rules=None, concentration: float = 0.5, max_tries: int = 100) -> list[QuantPolicy]:
    """``n`` mixed per-layer policies whose overall bit level varies from policy to policy.

    Each policy draws its own distribution over ``choices`` (Dirichlet with
    ``concentration``; small values give low-bit-heavy and high-bit-heavy policies as well
    as balanced ones), then every layer's weight and activation bits independently from it.
    ``apply_rules`` (e.g. :meth:`Supernet.apply_rules`) is applied; near-uniform results
    (:func:`near_uniform`) are drawn again.
    """
    choices = np.asarray(sorted(int(b) for b in choices))
    names = tuple(layer_names)
    out: list[QuantPolicy] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > max_tries * max(1, n):
            raise ValueError(f"could not draw {n} policies that are not near-uniform; widen the bit choices")
        p = rng.dirichlet(np.full(len(choices), concentration))
        w = tuple(int(b) for b in rng.choice(choices, len(names), p=p))
        a = tuple(int(b) for b in rng.choice(choices, len(names), p=p))
        pol = QuantPolicy(names, w, a, 8)
        pol = apply_rules(pol) if apply_rules is not None else pol
        if not near_uniform(pol):
            out.append(pol)
    return out


def stratify_by_energy(energies: Sequence[float], n: int, rng: np.random.Generator) -> list[int]:
    """Indices of ``n`` items, one per equal-width energy stratum between the minimum and maximum.

    Each stratum contributes one randomly chosen member; a stratum with no member is filled
    by the unchosen item whose energy is closest to its centre. Returned in pool order.
    """
    e = np.asarray(energies, float)
    if e.ndim != 1 or not np.all(np.isfinite(e)):
        raise ValueError("energies must be a 1-D array of finite values")
    if n > len(e):
        raise ValueError(f"cannot pick {n} policies from a pool of {len(e)}")
    edges = np.linspace(e.min(), e.max(), n + 1)
    stratum = np.clip(np.searchsorted(edges, e, side="right") - 1, 0, n - 1)
    chosen: list[int] = []
    empty = []
    for k in range(n):
        members = np.flatnonzero(stratum == k)
        if len(members):
            chosen.append(int(rng.choice(members)))
        else:
            empty.append(k)
    for k in empty:
        centre = 0.5 * (edges[k] + edges[k + 1])
        free = np.setdiff1d(np.arange(len(e)), chosen)
        chosen.append(int(free[np.argmin(np.abs(e[free] - centre))]))
    return sorted(chosen)


def timed_estimates(estimator, policies: Sequence[QuantPolicy]) -> tuple[np.ndarray, float]:
    """Per-policy estimates and the mean wall seconds per estimate (one policy per call)."""
    out = []
    t0 = time.perf_counter()
    for p in policies:
        out.append(float(estimator.estimate([p])[0]))
    return np.array(out), (time.perf_counter() - t0) / max(1, len(policies))


__all__ = ["Fidelity", "bootstrap_kendall_tau", "compare", "heterogeneous_policies", "mean_bits", "near_uniform",
           "stratify_by_energy", "timed_estimates"]
