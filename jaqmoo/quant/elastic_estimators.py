"""Accuracy of (architecture, bits) pairs: read off the elastic supernet, or a learned predictor.

:class:`ElasticSupernetEstimator` sets the sub-network and the policy, recalibrates
batch-norm for that pair and measures a validation subset (:func:`evaluate_pair`).
:class:`ArchPredictor` is a ridge model on bit features *and* architecture features: the
bit features (:func:`~jaqmoo.quant.estimators.policy_features`, layers that do not run
held at the top bits) get coefficients >= 0, so the prediction never rises when a layer
loses bits; the architecture features (depth per stage, expand and kernel per block,
log MACs, log parameters) enter as a ``+f, -f`` pair so their sign is free.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import kendalltau

from jaqmoo.errors import JaqmooError
from jaqmoo.models.elastic_space import ArchSpec, arch_stats, subnet_workload
from jaqmoo.quant.elastic import ElasticSupernet, evaluate_pair
from jaqmoo.quant.estimators import (
    EvalData,
    PredictorEstimator,
    folded_linear,
    linear_data,
    linear_from_data,
    policy_features,
)
from jaqmoo.quant.policy import QuantPolicy


class ElasticSupernetEstimator:
    """Accuracy of each pair from the elastic supernet (BN recalibrated per pair)."""

    def __init__(self, supernet: ElasticSupernet, data: EvalData) -> None:
        self.supernet = supernet
        self.data = data

    def estimate_pairs(self, pairs: Sequence[tuple[ArchSpec, QuantPolicy]]) -> np.ndarray:
        d = self.data
        return np.array([evaluate_pair(self.supernet, a, self.supernet.check_policy(p), d.calib, d.images, d.labels)
                         for a, p in pairs], dtype=float)


def arch_features(supernet_meta, space, archs: Sequence[ArchSpec]) -> np.ndarray:
    """Per architecture: depths, expands, kernels (0 for blocks that do not run), log MACs, log params."""
    rows = []
    for a in archs:
        a = space.canonical(a)
        st = arch_stats(subnet_workload(space, a, supernet_meta.num_classes, supernet_meta.in_channels,
                                        supernet_meta.input_size))
        rows.append([*a.depth, *a.expand, *a.kernel, np.log(st["macs"]), np.log(st["params"])])
    return np.asarray(rows, dtype=float)


class ArchPredictor:
    """``(architecture, bits) -> accuracy``, monotone in bits (see the module doc)."""

    def __init__(self, supernet: ElasticSupernet, seed: int = 0) -> None:
        self.meta = supernet.meta
        self.space = supernet.space
        self.layer_names = supernet.layer_names
        self.top = max(supernet.bits)
        self.seed = seed
        self.model = None
        self.linear: tuple[np.ndarray, float] | None = None
        self.n_bit_features = 0
        self.fit_error: dict[str, float] = {}

    def features(self, pairs: Sequence[tuple[ArchSpec, QuantPolicy]]) -> np.ndarray:
        pols = []
        for arch, pol in pairs:
            if pol.layer_names != self.layer_names:
                raise JaqmooError("ArchPredictor: policies must cover the largest network's layers (ElasticSupernet.layer_names)")
            from jaqmoo.models.elastic_space import subnet_layers

            active = {layer.name for layer in subnet_layers(self.space, arch, self.meta.num_classes,
                                                             self.meta.in_channels, self.meta.input_size)}
            w = tuple(b if n in active else self.top for n, b in zip(pol.layer_names, pol.weight_bits, strict=True))
            a = tuple(b if n in active else self.top for n, b in zip(pol.layer_names, pol.act_bits, strict=True))
            pols.append(QuantPolicy(pol.layer_names, w, a, pol.last_output_bits))
        bits = policy_features(pols)
        arch = arch_features(self.meta, self.space, [a for a, _ in pairs])
        self.n_bit_features = bits.shape[1]
        return np.concatenate([bits, arch, -arch], axis=1)

    def fit(self, pairs: Sequence[tuple[ArchSpec, QuantPolicy]], accuracies: Sequence[float], folds: int = 5) -> ArchPredictor:
        """Fit; ``fit_error`` gets the cross-validated MAE and Kendall tau."""
        from sklearn.model_selection import KFold, cross_val_predict

        y = np.asarray(accuracies, dtype=float)
        if len(pairs) != len(y) or len(y) < max(4, folds):
            raise JaqmooError(f"ArchPredictor: need >= {max(4, folds)} (pair, accuracy) samples (got {len(pairs)}, {len(y)})")
        x = self.features(pairs)
        make = PredictorEstimator("monotone", self.seed)._new_model  # ridge with coefficients >= 0
        pred = np.clip(cross_val_predict(make(), x, y, cv=KFold(folds, shuffle=True, random_state=self.seed)), 0, 1)
        self.fit_error = {"cv_mae": float(np.mean(np.abs(pred - y))),
                          "cv_kendall_tau": float(kendalltau(pred, y).statistic) if np.ptp(y) > 0 else float("nan")}
        self.model = make().fit(x, y)
        self.linear = folded_linear(self.model)
        return self

    def to_data(self) -> tuple[dict, dict[str, np.ndarray]] | None:
        """The fitted predictor as plain data (its supernet is not part of it: give it to :meth:`from_data`)."""
        if self.linear is None:
            return None
        return linear_data(*self.linear, {"class": "ArchPredictor", "seed": self.seed, "fit_error": self.fit_error,
                                          "n_features": int(len(self.linear[0]))})

    @classmethod
    def from_data(cls, supernet: ElasticSupernet, header: dict, arrays: dict[str, np.ndarray]) -> ArchPredictor:
        """The predictor :meth:`to_data` described, for ``supernet`` (a :class:`JaqmooError` when malformed)."""
        if header.get("class") != "ArchPredictor" or not isinstance(header.get("n_features"), int):
            raise JaqmooError("stored predictor: not an ArchPredictor")
        out = cls(supernet, int(header.get("seed") or 0))
        out.linear = linear_from_data(header, arrays, header["n_features"])
        fit_error = header.get("fit_error")
        out.fit_error = {str(k): float(v) for k, v in fit_error.items()
                         if isinstance(v, (int, float))} if isinstance(fit_error, dict) else {}
        return out

    def estimate_pairs(self, pairs: Sequence[tuple[ArchSpec, QuantPolicy]]) -> np.ndarray:
        if self.linear is None:
            raise JaqmooError("ArchPredictor: call fit() before estimate_pairs()")
        x = self.features(pairs)
        coef, intercept = self.linear
        if x.shape[1] != len(coef):
            raise JaqmooError(f"ArchPredictor: {x.shape[1]} features but the stored fit has {len(coef)}; "
                              "delete the predictor cache to refit")
        return np.clip(x @ coef + intercept, 0.0, 1.0)


__all__ = ["ArchPredictor", "ElasticSupernetEstimator", "arch_features"]
