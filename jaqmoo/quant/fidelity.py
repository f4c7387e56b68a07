"""How well an accuracy estimator ranks policies against QAT ground truth (used by benchmarks).

* :func:`compare` — Kendall tau, mean absolute gap and the per-policy table of an estimate
  against the ground truth over the same policies;
* :func:`bootstrap_kendall_tau` — a percentile bootstrap confidence interval for that tau;
* :func:`within_band_tau`, :func:`bootstrap_band_tau` and
  :func:`paired_bootstrap_band_tau_difference` — ranking inside iso-cost bands (mean over
  the bands) with bootstrap intervals, alone and as the paired difference of two estimators;
* :func:`convergence_check` — does a QAT truth at budget B rank and score as at 2B?
* :func:`iso_cost_band` — policies of about one energy with bits arranged differently;
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


def _tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall tau-b of two samples; nan when either is constant (tau undefined)."""
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(kendalltau(a, b).statistic)


def _band_indices(bands: Sequence[int], n: int) -> list[np.ndarray]:
    labels = np.asarray(bands)
    if labels.shape != (n,):
        raise ValueError(f"bands must give one band label per policy ({n}), got shape {labels.shape}")
    return [np.flatnonzero(labels == b) for b in np.unique(labels)]


def within_band_tau(estimate: Sequence[float], truth: Sequence[float], bands: Sequence[int]) -> float:
    """Mean over the bands of the Kendall tau between ``estimate`` and ``truth`` inside each band.

    ``bands`` gives each policy's band label. A band whose estimate or truth is constant (tau
    undefined) is left out of the mean; nan when no band has a defined tau. This is how well
    an estimator ranks policies of about the same cost: the decision a search actually makes.
    """
    est, tru = np.asarray(estimate, float), np.asarray(truth, float)
    if est.shape != tru.shape or est.ndim != 1:
        raise ValueError(f"need two equal-length 1-D samples (got {est.shape}, {tru.shape})")
    taus = [_tau(est[i], tru[i]) for i in _band_indices(bands, len(est))]
    taus = [t for t in taus if np.isfinite(t)]
    return float(np.mean(taus)) if taus else float("nan")


def _band_resamples(bands: Sequence[int], n: int, n_boot: int, seed: int):
    """``n_boot`` index arrays, each resampling every band's policies with replacement (seeded)."""
    groups = _band_indices(bands, n)
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        yield np.concatenate([rng.choice(g, len(g)) for g in groups])


def _interval(values: list[float], level: float) -> tuple[float, float]:
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    return float(np.quantile(v, alpha)), float(np.quantile(v, 1.0 - alpha))


def bootstrap_band_tau(estimate: Sequence[float], truth: Sequence[float], bands: Sequence[int],
                       n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """:func:`within_band_tau` and its ``level`` percentile-bootstrap interval ``(tau, low, high)``:
    each resample draws every band's policies with replacement inside the band (seeded)."""
    est, tru = np.asarray(estimate, float), np.asarray(truth, float)
    tau = within_band_tau(est, tru, bands)
    labels = np.asarray(bands)
    boots = [within_band_tau(est[i], tru[i], labels[i]) for i in _band_resamples(labels, len(est), n_boot, seed)]
    return (tau, *_interval(boots, level))


def paired_bootstrap_band_tau_difference(estimate_a: Sequence[float], estimate_b: Sequence[float],
                                         truth: Sequence[float], bands: Sequence[int], n_boot: int = 2000,
                                         level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """``within_band_tau(a) - within_band_tau(b)`` and its paired percentile-bootstrap interval:
    both estimators are scored on the same resampled policies in every resample, so the
    interval reflects the difference, not two independent uncertainties."""
    a, b, tru = (np.asarray(v, float) for v in (estimate_a, estimate_b, truth))
    if not a.shape == b.shape == tru.shape:
        raise ValueError(f"need three equal-length samples (got {a.shape}, {b.shape}, {tru.shape})")
    labels = np.asarray(bands)
    diff = within_band_tau(a, tru, labels) - within_band_tau(b, tru, labels)
    boots = [within_band_tau(a[i], tru[i], labels[i]) - within_band_tau(b[i], tru[i], labels[i])
             for i in _band_resamples(labels, len(a), n_boot, seed)]
    return (float(diff), *_interval(boots, level))


@dataclass
class ConvergenceCheck:
    """Does a truth budget B agree with 2B? (``passed``: tau >= ``tau_min`` and mean
    absolute difference <= ``max_diff_points``)."""

    tau: float
    mean_abs_diff_points: float
    tau_min: float
    max_diff_points: float

    @property
    def passed(self) -> bool:
        return bool(self.tau >= self.tau_min and self.mean_abs_diff_points <= self.max_diff_points)

    def describe(self) -> str:
        return (f"B vs 2B: Kendall tau {self.tau:.3f} (need >= {self.tau_min:g}), mean |difference| "
                f"{self.mean_abs_diff_points:.2f} points (need <= {self.max_diff_points:g}): "
                f"{'converged' if self.passed else 'NOT converged'}")


def convergence_check(accuracy_b: Sequence[float], accuracy_2b: Sequence[float], tau_min: float = 0.9,
                      max_diff_points: float = 0.3) -> ConvergenceCheck:
    """Compare the truth at budget B with the truth at 2B over the same policies (accuracies
    as fractions): Kendall tau of the two rankings and mean absolute difference in points."""
    b, b2 = np.asarray(accuracy_b, float), np.asarray(accuracy_2b, float)
    if b.shape != b2.shape or b.ndim != 1 or len(b) < 2:
        raise ValueError(f"need two equal-length 1-D samples of >= 2 accuracies (got {b.shape}, {b2.shape})")
    return ConvergenceCheck(_tau(b, b2), float(np.mean(np.abs(b - b2)) * 100.0), tau_min, max_diff_points)


def policy_distance(a: QuantPolicy, b: QuantPolicy) -> float:
    """Share of the weight and activation bit genes in which two policies differ."""
    ga = np.array(a.weight_bits + a.act_bits)
    gb = np.array(b.weight_bits + b.act_bits)
    return float(np.mean(ga != gb))


def iso_cost_band(layer_names: Sequence[str], choices: Sequence[int], energy_of, target: float, size: int,
                  rng: np.random.Generator, tolerance: float = 0.015, apply_rules=None, min_distance: float = 0.3,
                  max_tries: int = 200, max_moves: int = 400, draw=None) -> list[QuantPolicy]:
    """``size`` mixed policies whose ``energy_of(policy)`` lies within ``tolerance`` (relative)
    of ``target``, so any two are within ``2 * tolerance`` of each other, with bits arranged
    differently: each starts from its own draw (``draw(rng)``; default one
    :func:`heterogeneous_policies` policy, a bit distribution of its own) and is
    repaired towards the target one gene (a layer's weight or activation bits) and one
    candidate bit-width at a time, a randomly chosen gene that moves the energy the right way
    without overshooting past the tolerance; kept when not near-uniform and at least
    ``min_distance`` (share of genes) away from every policy kept before.
    """
    choices = sorted(int(b) for b in choices)
    names = tuple(layer_names)
    fixed = set()
    if apply_rules is not None:  # genes the rules pin cannot be moved
        probe_lo = apply_rules(QuantPolicy.uniform(names, choices[0]))
        probe_hi = apply_rules(QuantPolicy.uniform(names, choices[-1]))
        genes_lo = probe_lo.weight_bits + probe_lo.act_bits
        genes_hi = probe_hi.weight_bits + probe_hi.act_bits
        fixed = {i for i in range(2 * len(names)) if genes_lo[i] == genes_hi[i]}
    out: list[QuantPolicy] = []
    for _ in range(max_tries):
        if len(out) == size:
            return out
        pol = draw(rng) if draw is not None else heterogeneous_policies(names, 1, rng, choices, apply_rules)[0]
        genes = list(pol.weight_bits + pol.act_bits)
        energy = energy_of(pol)
        for _ in range(max_moves):
            gap = energy / target - 1.0
            if abs(gap) <= tolerance:
                break
            step = -1 if gap > 0 else 1
            movable = [i for i in range(len(genes)) if i not in fixed
                       and 0 <= choices.index(genes[i]) + step < len(choices)]
            if not movable:
                break
            moved = False
            for i in rng.permutation(movable):
                trial = list(genes)
                trial[i] = choices[choices.index(genes[i]) + step]
                cand = QuantPolicy(names, tuple(trial[: len(names)]), tuple(trial[len(names):]), 8)
                e = energy_of(cand)
                if (e / target - 1.0) * np.sign(gap) >= -tolerance:  # no overshoot past the band
                    genes, energy, moved = trial, e, True
                    break
            if not moved:
                break
        pol = QuantPolicy(names, tuple(genes[: len(names)]), tuple(genes[len(names):]), 8)
        if abs(energy / target - 1.0) <= tolerance and not near_uniform(pol) \
                and all(policy_distance(pol, q) >= min_distance for q in out):
            out.append(pol)
    if len(out) < size:
        raise ValueError(f"could only build {len(out)} of {size} policies within {tolerance:.1%} of energy "
                         f"{target:.4g}; widen the tolerance or lower min_distance")
    return out


def timed_estimates(estimator, policies: Sequence[QuantPolicy]) -> tuple[np.ndarray, float]:
    """Per-policy estimates and the mean wall seconds per estimate (one policy per call)."""
    out = []
    t0 = time.perf_counter()
    for p in policies:
        out.append(float(estimator.estimate([p])[0]))
    return np.array(out), (time.perf_counter() - t0) / max(1, len(policies))


__all__ = ["ConvergenceCheck", "Fidelity", "bootstrap_band_tau", "bootstrap_kendall_tau", "compare",
           "convergence_check", "heterogeneous_policies", "iso_cost_band", "mean_bits", "near_uniform",
           "paired_bootstrap_band_tau_difference", "policy_distance", "stratify_by_energy", "timed_estimates",
           "within_band_tau"]
