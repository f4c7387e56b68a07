"""The accuracy estimators a spec may choose (``accuracy.estimator``), in one registry.

Each entry puts a model strategy's pieces (:mod:`jaqmoo.experiment.strategy`: per policy for a
fixed network, per (architecture, bits) pair for an elastic space) together into
``(search estimator, re-scoring estimator or None, predictor or None)``:

* ``supernet`` -- every candidate scored by the supernet itself (memoised);
* ``predictor`` -- a predictor fitted on supernet-scored samples scores the search (memoised);
  the supernet re-scores the final front.

Adding an estimator kind: one function here under ``@ESTIMATORS.register(name)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jaqmoo.registry import Registry

#: ``(model strategy, supernet, splits, fitted, progress) -> (search, rescore | None, predictor | None)``
EstimatorKind = Callable[[Any, Any, Any, Any, bool], tuple[Any, Any | None, Any | None]]

ESTIMATORS: Registry[EstimatorKind] = Registry("accuracy estimator")


@ESTIMATORS.register("supernet")
def supernet(model: Any, net: Any, splits: Any, fitted: Any, progress: bool) -> tuple[Any, None, None]:
    """The supernet scores every candidate."""
    _, memoised = model.supernet_estimators(net, splits)
    return memoised, None, None


@ESTIMATORS.register("predictor")
def predictor(model: Any, net: Any, splits: Any, fitted: Any, progress: bool) -> tuple[Any, Any, Any]:
    """A predictor fitted on the supernet's scores searches; the supernet re-scores the front."""
    source, memoised = model.supernet_estimators(net, splits)
    fit = model.fit_predictor(net, source, fitted, progress)
    return model.memoised(fit, net), memoised, fit


__all__ = ["ESTIMATORS", "EstimatorKind", "predictor", "supernet"]
