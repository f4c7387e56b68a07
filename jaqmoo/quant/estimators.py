"""Accuracy estimators behind one interface: ``estimate(policies) -> accuracies``.

* :class:`SupernetEstimator` — switch the supernet to the policy, recalibrate batch-norm
  statistics on a few fixed training batches, evaluate a fixed validation subset.
* :class:`PredictorEstimator` — a small regression model (ridge on bit features, monotone
  in every layer's bits by default, or a small MLP) fitted on ``(policy, accuracy)``
  samples; microseconds per estimate. Its
  cross-validated error is in :attr:`PredictorEstimator.fit_error`.
* :class:`PTQEstimator` — post-training quantization of a float-trained network (calibrated
  steps, recalibrated batch-norm statistics, no training): the baseline to beat.
* :class:`QATEstimator` — the ground truth: fine-tune a copy of the supernet under one
  fixed policy for a few epochs (full LSQ quantization-aware training), then evaluate.

All return top-1 accuracy as fractions in [0, 1], one per policy.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from scipy.stats import kendalltau
from torch import Tensor

from jaqmoo.errors import JaqmooError
from jaqmoo.progress import progress_bar
from jaqmoo.quant.policy import FLOAT_BITS, QuantPolicy
from jaqmoo.quant.qat import calibrated_start, qat_finetune
from jaqmoo.quant.sampling import level_policies
from jaqmoo.quant.supernet import Supernet
from jaqmoo.quant.train import iterate_batches, resolve_device


@runtime_checkable
class AccuracyEstimator(Protocol):
    """Anything that scores quantization policies by top-1 accuracy."""

    def estimate(self, policies: Sequence[QuantPolicy]) -> np.ndarray:
        """Top-1 accuracy (fraction in [0, 1]) of each policy."""
        ...


@dataclass
class EvalData:
    """A fixed evaluation set: BN-calibration batches and a validation subset."""

    calib: list[Tensor]
    images: Tensor
    labels: Tensor

    @classmethod
    def from_splits(cls, splits, n_val: int = 2000, calib_batches: int = 2, calib_batch_size: int = 128,
                    seed: int = 0, device: str | torch.device = "auto", use_test: bool = False) -> EvalData:
        """The first ``n_val`` images of the validation (or test) split and seeded training batches, on
        ``device`` (``auto``: CUDA when present, else CPU; see :func:`~jaqmoo.quant.train.resolve_device`)."""
        device = resolve_device(device)
        gen = torch.Generator().manual_seed(seed)
        calib = [x.to(device) for x, _ in iterate_batches(splits.train, calib_batch_size, True, gen)][:calib_batches]
        xs, ys, have = [], [], 0
        for x, y in iterate_batches(splits.test if use_test else splits.val, 1000, shuffle=False):
            xs.append(x)
            ys.append(y)
            have += len(x)
            if have >= n_val:
                break
        return cls(calib, torch.cat(xs)[:n_val].to(device), torch.cat(ys)[:n_val].to(device))


def _channels_last(x: Tensor) -> Tensor:
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def _as_list(policies: Sequence[QuantPolicy] | QuantPolicy) -> list[QuantPolicy]:
    if isinstance(policies, QuantPolicy):
        return [policies]
    policies = list(policies)
    for p in policies:
        if not isinstance(p, QuantPolicy):
            raise JaqmooError(f"estimate() takes QuantPolicy objects, got {type(p).__name__}")
    return policies


#: identifies how :func:`sample_policies` draws (part of the search's predictor cache key, so a
#: predictor fitted on samples drawn another way is refitted rather than reused)
SAMPLING_VERSION = "level-spread-1"


def sample_policies(supernet: Supernet, n: int, rng: np.random.Generator,
                    choices: Sequence[int] | None = None) -> list[QuantPolicy]:
    """``n`` mixed policies spread over the precision levels a search visits (predictor training samples).

    The first ``min(len(choices), max(2, n // 4))`` are uniform policies at the candidate
    bit-widths, highest and lowest first (the ends of the accuracy range are anchored). The
    others are drawn as the search's first population draws its bit genes
    (:func:`jaqmoo.quant.sampling.level_policies`): per policy a level uniform over the
    candidate range, every layer's weight and activation bits that level plus Gaussian noise
    of 0.15 of the range, rounded to ``choices``. The supernet's first/last-layer rule is
    applied; the draw is deterministic for a given ``rng`` state.

    (Until :data:`SAMPLING_VERSION` ``level-spread-1`` half the policies drew every layer
    independently and uniformly, so nearly all of them had a few 2-bit layers and sat near
    chance accuracy, and the other half stayed within one candidate of a level.)
    """
    if n < 0:
        raise JaqmooError(f"sample_policies: n must be >= 0 (got {n})")
    choices = sorted(int(b) for b in (choices if choices is not None else supernet.bits))
    ends = [choices[-1], choices[0]] if len(choices) > 1 else choices
    order = ends + [b for b in choices if b not in ends]
    anchors = [supernet.uniform_policy(b) for b in order[: min(n, len(choices), max(2, n // 4))]]
    return anchors + level_policies(supernet, n - len(anchors), rng, choices)


class SupernetEstimator:
    """Accuracy of a policy read off the supernet's shared weights (about a second each).

    ``data`` is an :class:`EvalData` or a :class:`jaqmoo.data.DatasetSplits` (then the
    first ``max_images`` validation images and ``calib_batches`` seeded training batches
    of ``calib_batch_size`` images are used). The supernet is switched to channels-last
    memory format (faster CPU convolutions); its batch-norm statistics are those of the
    last estimated policy afterwards.
    """

    def __init__(self, supernet: Supernet, data, max_images: int = 2000, calib_batches: int = 2,
                 calib_batch_size: int = 128, seed: int = 0, threads: int | None = None) -> None:
        if not isinstance(data, EvalData):
            device = next(supernet.parameters()).device
            data = EvalData.from_splits(data, max_images, calib_batches, calib_batch_size, seed, device)
        # channels-last convolutions are ~1.5x faster on CPU for these networks
        supernet.to(memory_format=torch.channels_last)
        data = EvalData([_channels_last(c) for c in data.calib], _channels_last(data.images), data.labels)
        self.supernet = supernet
        self.data = data
        self.threads = threads

    @property
    def layer_names(self) -> tuple[str, ...]:
        return self.supernet.layer_names

    def estimate_one(self, policy: QuantPolicy) -> float:
        self.supernet.set_policy(policy)
        with torch.inference_mode():
            self.supernet.recalibrate_bn(self.data.calib)
            return self.supernet.accuracy(self.data.images, self.data.labels)

    def estimate(self, policies: Sequence[QuantPolicy]) -> np.ndarray:
        policies = _as_list(policies)
        checked = [self.supernet.check_policy(p) for p in policies]  # fail before any work
        old_threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            return np.array([self.estimate_one(p) for p in checked], dtype=float)
        finally:
            torch.set_num_threads(old_threads)


class PTQEstimator(SupernetEstimator):
    """Post-training quantization of a float-trained network: no training at all.

    The float network's step sizes are calibrated once on the first calibration batch of
    ``data`` (:func:`~jaqmoo.quant.qat.calibrated_start`, as every QAT fine-tune starts);
    each policy is then evaluated as :class:`SupernetEstimator` does: batch-norm statistics
    recalibrated on ``data``'s calibration batches, accuracy on its images. ``float_net`` is
    left untouched. The cheap baseline a supernet has to beat.
    """

    def __init__(self, float_net: Supernet, data: EvalData, threads: int | None = None) -> None:
        device = next(float_net.parameters()).device
        start = calibrated_start(float_net, data.calib[0], device)
        start.set_csq_fraction(0.0)
        super().__init__(start, data, threads=threads)


def policy_features(policies: Sequence[QuantPolicy]) -> np.ndarray:
    """Per layer: weight and activation bits and minus their quantization-noise proxies 4^-bits.

    Every feature grows with the bits, so a model whose coefficients are all >= 0 never
    predicts that removing bits raises accuracy.
    """
    w = np.array([p.weight_bits for p in policies], dtype=float)
    a = np.array([p.act_bits for p in policies], dtype=float)
    w[w == FLOAT_BITS] = 16.0
    a[a == FLOAT_BITS] = 16.0
    return np.concatenate([w / 8.0, a / 8.0, -(4.0 ** (2 - w)), -(4.0 ** (2 - a))], axis=1)


PREDICTOR_KINDS = ("monotone", "ridge", "mlp")


def folded_linear(model: Any) -> tuple[np.ndarray, float]:
    """A fitted ``StandardScaler -> Ridge`` pipeline (or its ``GridSearchCV``) as one weight vector
    and intercept: ``x @ coef + intercept`` predicts what the pipeline predicts."""
    scaler, ridge = model[0], model[-1]
    ridge = getattr(ridge, "best_estimator_", ridge)
    coef = np.asarray(ridge.coef_, dtype=float) / scaler.scale_
    return coef, float(ridge.intercept_ - scaler.mean_ @ coef)


def linear_data(coef: np.ndarray, intercept: float, header: dict) -> tuple[dict, dict[str, np.ndarray]]:
    """A linear predictor as plain data (:mod:`jaqmoo.datafile` bundle parts)."""
    return {**header, "intercept": float(intercept)}, {"coef": np.asarray(coef, dtype=float)}


def linear_from_data(header: dict, arrays: dict[str, np.ndarray], n_features: int) -> tuple[np.ndarray, float]:
    """``(coef, intercept)`` from :func:`linear_data`'s parts, checked (finite, ``n_features`` long)."""
    coef, intercept = arrays.get("coef"), header.get("intercept")
    if (coef is None or coef.shape != (n_features,) or not np.all(np.isfinite(coef))
            or not isinstance(intercept, (int, float)) or not np.isfinite(intercept)):
        raise JaqmooError(f"stored predictor: expected {n_features} finite coefficients and a finite intercept")
    return coef.astype(float), float(intercept)


class PredictorEstimator:
    """A learned ``bits -> accuracy`` model fitted on (policy, accuracy) samples.

    ``kind``: ``monotone`` (default) — ridge regression on :func:`policy_features` with
    every coefficient constrained to be >= 0, so predicted accuracy never rises when a
    layer loses bits. An unconstrained fit on a few hundred samples of a 50-layer network
    has many small spurious "fewer bits is better" coefficients, and a search that
    maximises the prediction adds all of them up: it finds policies predicted far above
    what the supernet then measures. ``ridge`` is that unconstrained fit; ``mlp`` a small
    neural network.
    """

    def __init__(self, kind: str = "monotone", seed: int = 0) -> None:
        if kind not in PREDICTOR_KINDS:
            raise JaqmooError(f"predictor kind must be one of {', '.join(PREDICTOR_KINDS)} (got {kind!r})")
        self.kind = kind
        self.seed = seed
        self.model = None
        self.layer_names: tuple[str, ...] | None = None
        self.fit_error: dict[str, float] = {}

    def _new_model(self):
        from sklearn.linear_model import Ridge, RidgeCV
        from sklearn.model_selection import GridSearchCV
        from sklearn.neural_network import MLPRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if self.kind == "monotone":  # the scaler divides by positive std: signs are kept
            return make_pipeline(StandardScaler(), GridSearchCV(
                Ridge(positive=True), {"alpha": np.logspace(-3, 2, 6)}, cv=4, scoring="neg_mean_squared_error"))
        if self.kind == "ridge":
            return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
        return make_pipeline(StandardScaler(), MLPRegressor((64, 32), alpha=1e-3, max_iter=3000,
                                                            random_state=self.seed))

    def fit(self, policies: Sequence[QuantPolicy], accuracies: Sequence[float], folds: int = 5) -> PredictorEstimator:
        """Fit on samples; ``fit_error`` gets the ``folds``-fold cross-validated MAE, RMSE and Kendall tau."""
        from sklearn.model_selection import KFold, cross_val_predict

        policies = _as_list(policies)
        y = np.asarray(accuracies, dtype=float)
        if len(policies) != len(y):
            raise JaqmooError(f"predictor: {len(policies)} policies but {len(y)} accuracies")
        if len(policies) < max(4, folds):
            raise JaqmooError(f"predictor: need at least {max(4, folds)} samples to fit (got {len(policies)})")
        names = {p.layer_names for p in policies}
        if len(names) != 1:
            raise JaqmooError("predictor: all policies must cover the same layers")
        self.layer_names = policies[0].layer_names
        x = policy_features(policies)
        cv = KFold(folds, shuffle=True, random_state=self.seed)
        pred = np.clip(cross_val_predict(self._new_model(), x, y, cv=cv), 0.0, 1.0)
        tau = kendalltau(pred, y).statistic if np.ptp(y) > 0 else float("nan")
        self.fit_error = {
            "cv_mae": float(np.mean(np.abs(pred - y))),
            "cv_rmse": float(np.sqrt(np.mean((pred - y) ** 2))),
            "cv_kendall_tau": float(tau),
            "n_samples": float(len(y)),
        }
        self.model = self._new_model().fit(x, y)
        self.linear = None
        if self.kind in ("monotone", "ridge"):  # fold scaler + ridge into one weight vector: a dot product
            self.linear = folded_linear(self.model)
        return self

    def to_data(self) -> tuple[dict, dict[str, np.ndarray]] | None:
        """The fitted predictor as plain data (``None`` for the ``mlp`` kind: refitted, not stored)."""
        if getattr(self, "linear", None) is None or self.layer_names is None:
            return None
        return linear_data(*self.linear, {"class": "PredictorEstimator", "kind": self.kind, "seed": self.seed,
                                          "layer_names": list(self.layer_names), "fit_error": self.fit_error})

    @classmethod
    def from_data(cls, header: dict, arrays: dict[str, np.ndarray]) -> PredictorEstimator:
        """The predictor :meth:`to_data` described (a :class:`JaqmooError` when the data is malformed)."""
        names = header.get("layer_names")
        if (header.get("class") != "PredictorEstimator" or not isinstance(names, list)
                or not all(isinstance(n, str) for n in names) or header.get("kind") not in PREDICTOR_KINDS):
            raise JaqmooError("stored predictor: not a PredictorEstimator")
        out = cls(header["kind"], int(header.get("seed") or 0))
        out.layer_names = tuple(names)
        out.linear = linear_from_data(header, arrays, 4 * len(names))
        fit_error = header.get("fit_error")
        out.fit_error = {str(k): float(v) for k, v in fit_error.items()
                         if isinstance(v, (int, float))} if isinstance(fit_error, dict) else {}
        return out

    def estimate(self, policies: Sequence[QuantPolicy]) -> np.ndarray:
        if self.model is None and getattr(self, "linear", None) is None:
            raise JaqmooError("predictor: call fit() (or PredictorEstimator.from_estimator) before estimate()")
        policies = _as_list(policies)
        for p in policies:
            if p.layer_names != self.layer_names:
                raise JaqmooError(
                    f"predictor was fitted on {len(self.layer_names)} layers; policy has {len(p)} "
                    "(or other layer names)")
        x = policy_features(policies)
        if getattr(self, "linear", None) is not None:
            coef, intercept = self.linear
            return np.clip(x @ coef + intercept, 0.0, 1.0)
        return np.clip(self.model.predict(x), 0.0, 1.0)

    @classmethod
    def from_estimator(cls, estimator: AccuracyEstimator, policies: Sequence[QuantPolicy],
                       kind: str = "monotone", seed: int = 0) -> PredictorEstimator:
        """Fit on ``estimator``'s scores of ``policies`` (typically a SupernetEstimator)."""
        policies = _as_list(policies)
        acc = estimator.estimate(policies)
        return cls(kind, seed).fit(policies, acc)

    @classmethod
    def fit_from(cls, estimator: SupernetEstimator, n_samples: int = 200, choices: Sequence[int] | None = None,
                 seed: int = 0, kind: str = "monotone", progress: bool = False) -> PredictorEstimator:
        """Fit on ``n_samples`` policies from :func:`sample_policies`, scored by a SupernetEstimator."""
        if n_samples < 5:
            raise JaqmooError(f"predictor: n_samples must be >= 5 (got {n_samples})")
        rng = np.random.default_rng(seed)
        policies = sample_policies(estimator.supernet, n_samples, rng, choices)
        acc = np.array([estimator.estimate([p])[0] for p in progress_bar(
            policies, desc="predictor samples", disable=not progress, leave=False)])
        return cls(kind, seed).fit(policies, acc)


class QATEstimator:
    """Ground truth: quantization-aware fine-tuning of one policy from the supernet weights.

    With ``calibrate_steps`` (the default, right for a float-trained start) each fine-tune
    starts from quantization-error-optimal step sizes for its policy
    (:meth:`~jaqmoo.quant.supernet.Supernet.calibrate_steps` on the first calibration batch of
    ``data``), as quantized training does after float epochs; ``False`` keeps the supernet's
    own steps (a quantization-trained start).
    """

    def __init__(self, supernet: Supernet, splits, data: EvalData, epochs: float = 1.0, lr: float = 5e-4,
                 batch_size: int = 128, seed: int = 0, device: str = "auto", progress: bool = False,
                 calibrate_steps: bool = True) -> None:
        if epochs <= 0:
            raise JaqmooError(f"QAT epochs must be > 0 (got {epochs})")
        self.supernet = supernet
        self.splits = splits
        self.data = data
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.seed = seed
        self.device = resolve_device(device)
        self.progress = progress
        self.calibrate_steps = calibrate_steps
        self._start: Supernet | None = None  # the (calibrated) start every fine-tune copies

    def start(self) -> Supernet:
        """The network every fine-tune starts from: the supernet, with calibrated steps when asked
        (computed once: calibration does not depend on the policy)."""
        if self._start is None:
            self._start = calibrated_start(self.supernet, self.data.calib[0], self.device) \
                if self.calibrate_steps else self.supernet
        return self._start

    def finetune(self, policy: QuantPolicy) -> Supernet:
        """A copy of the start (:meth:`start`) fine-tuned under ``policy`` (every channel quantized, no CSQ)."""
        net = copy.deepcopy(self.start()).to(self.device)
        net.set_csq_fraction(0.0)
        net.set_policy(policy)
        per_epoch = max(1, len(self.splits.train) // self.batch_size)
        steps = max(1, int(math.ceil(self.epochs * per_epoch)))
        return qat_finetune(net, self.splits.train, steps, self.lr, self.batch_size, self.seed, self.device)

    def estimate(self, policies: Sequence[QuantPolicy]) -> np.ndarray:
        policies = [self.supernet.check_policy(p) for p in _as_list(policies)]
        out = []
        for p in progress_bar(policies, desc="QAT ground truth", disable=not self.progress, leave=False):
            net = self.finetune(p)
            with torch.inference_mode():
                net.recalibrate_bn([c.to(self.device) for c in self.data.calib])
                out.append(net.accuracy(self.data.images.to(self.device), self.data.labels.to(self.device)))
        return np.array(out, dtype=float)


__all__ = [
    "AccuracyEstimator",
    "EvalData",
    "SupernetEstimator",
    "PredictorEstimator",
    "PTQEstimator",
    "QATEstimator",
    "policy_features",
    "sample_policies",
    "SAMPLING_VERSION",
]
