"""What a spec's model is to the rest of the experiment: a fixed network or an elastic space.

One interface, two implementations, chosen once by :func:`model_strategy` (never by ``if`` on
``model.elastic`` further on):

* :class:`FixedModel` -- ``model.name`` as built by :func:`jaqmoo.models.build_model`: the
  search evolves bits (+ hardware, mappings) of its layers; accuracy from a
  :class:`~jaqmoo.quant.supernet.Supernet` of that network (or a predictor fitted on it).
* :class:`ElasticModel` -- ``model.elastic``: architecture genes in front of the bits genome of
  the largest sub-network; accuracy of (architecture, bits) pairs from an elastic supernet (or
  an :class:`~jaqmoo.quant.elastic_estimators.ArchPredictor`).

Each answers: the network and workload the bits genome describes (:meth:`network`), the genome
the search evolves (:meth:`search_space`), how its supernet is built, loaded and named, and its
accuracy estimators (per policy or per (architecture, bits) pair) that the estimator kinds of
:mod:`jaqmoo.experiment.estimators` put together.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from jaqmoo.errors import JaqmooError
from jaqmoo.experiment.caches import CachedEstimator, NoGradPairs, PairCache
from jaqmoo.experiment.elastic import (
    arch_genome,
    elastic_space,
    fit_arch_predictor,
    largest_workload,
)
from jaqmoo.experiment.spec import ExperimentSpec
from jaqmoo.models import build_model
from jaqmoo.models.elastic_space import ElasticSpace, build_largest
from jaqmoo.quant import supernet as sn
from jaqmoo.quant.checkpoints import load_supernet
from jaqmoo.quant.elastic import build_elastic_supernet, load_elastic_supernet
from jaqmoo.quant.elastic_estimators import ArchPredictor, ElasticSupernetEstimator
from jaqmoo.quant.estimators import EvalData, PredictorEstimator, SupernetEstimator
from jaqmoo.quant.train import resolve_device
from jaqmoo.workload import Workload, extract_workload

PREDICTOR_KIND = "monotone"  # see jaqmoo.quant.estimators.PredictorEstimator

#: ``fitted(kind, fit, extra_key[, restore])``: the predictor of this run, loaded from its cache
#: (rebuilt from plain data by ``restore``, default the linear predictor's) or ``fit()``
FittedPredictor = Callable[..., Any]


class ModelStrategy(Protocol):
    """The model side of an experiment (see the module doc)."""

    spec: ExperimentSpec
    #: the elastic architecture space (None for a fixed network)
    space: ElasticSpace | None

    @property
    def kind(self) -> str:
        """Names the supernet family in cache file names (``mobilenet_v2``, ``mobilenet_v2-elastic``)."""

    @property
    def description(self) -> str:
        """The network in messages (``model simple_cnn``)."""

    def network(self, splits: Any) -> tuple[Any, Workload]:
        """The network whose layers the bits genome describes, and its workload."""

    def search_space(self, bits: Any, splits: Any) -> Any:
        """The genome the search evolves around ``bits`` (a GenomeSpace)."""

    def train_extra(self) -> dict[str, Any]:
        """What the supernet's ``TrainConfig.extra`` records about the model."""

    def build_supernet(self, cfg: Any, splits: Any) -> Any:
        """An untrained supernet for ``cfg`` (a ``TrainConfig``)."""

    def load_supernet(self, path: Path) -> Any:
        """The trained supernet at ``path`` (refusing one of another network)."""

    def meta(self) -> dict[str, Any]:
        """Entries of the run's ``meta.json`` about the model."""

    def supernet_estimators(self, net: Any, splits: Any) -> tuple[Any, Any]:
        """``(estimator a predictor is fitted on, memoised supernet estimator)``."""

    def fit_predictor(self, net: Any, source: Any, fitted: FittedPredictor, progress: bool) -> Any:
        """The predictor fitted on ``source``'s scores (through ``fitted``, which caches it)."""

    def memoised(self, estimator: Any, net: Any) -> Any:
        """``estimator`` memoised per phenotype."""


class FixedModel:
    """A fixed network (``model.name``, ``model.width_mult``)."""

    space = None

    def __init__(self, spec: ExperimentSpec) -> None:
        self.spec = spec

    @property
    def kind(self) -> str:
        return self.spec.model.name

    @property
    def description(self) -> str:
        return f"model {self.spec.model.name}"

    def network(self, splits: Any) -> tuple[Any, Workload]:
        m = self.spec.model
        model = build_model(m.name, splits.num_classes, splits.in_channels, splits.input_size, m.width_mult)
        return model, extract_workload(model, splits.input_shape, name=m.name, num_classes=splits.num_classes)

    def search_space(self, bits: Any, splits: Any) -> Any:
        return bits

    def train_extra(self) -> dict[str, Any]:
        return {}

    def build_supernet(self, cfg: Any, splits: Any) -> Any:
        return sn.build_supernet(cfg.model, splits.num_classes, splits.in_channels, splits.input_size, cfg.width_mult,
                                 splits.name, cfg.bits, cfg.per_channel, cfg.csq_fraction, cfg.fixed_first_last)

    def load_supernet(self, path: Path) -> Any:
        return load_supernet(path, expect_model=self.spec.model.name, device=estimate_device(self.spec))

    def meta(self) -> dict[str, Any]:
        return {}

    def supernet_estimators(self, net: Any, splits: Any) -> tuple[Any, Any]:
        est = SupernetEstimator(net, splits, max_images=self.spec.accuracy.val_images, seed=self.spec.seed)
        return est, CachedEstimator(est)

    def fit_predictor(self, net: Any, source: Any, fitted: FittedPredictor, progress: bool) -> Any:
        spec = self.spec
        return fitted(PREDICTOR_KIND, lambda: PredictorEstimator.fit_from(
            source, n_samples=spec.accuracy.predictor_samples, choices=supernet_bits(spec), seed=spec.seed,
            kind=PREDICTOR_KIND, progress=progress), None)

    def memoised(self, estimator: Any, net: Any) -> Any:
        return CachedEstimator(estimator)


class ElasticModel:
    """An elastic architecture space (``model.elastic``); the bits genome is its largest network's."""

    def __init__(self, spec: ExperimentSpec, space: ElasticSpace) -> None:
        self.spec = spec
        self.space = space

    @property
    def kind(self) -> str:
        return f"{self.spec.model.name}-elastic"

    @property
    def description(self) -> str:
        return "the largest network of model.elastic"

    def network(self, splits: Any) -> tuple[Any, Workload]:
        model = build_largest(self.space, splits.num_classes, splits.in_channels, splits.input_size)
        return model, largest_workload(self.space, splits)

    def search_space(self, bits: Any, splits: Any) -> Any:
        return arch_genome(self.space, bits, splits)

    def train_extra(self) -> dict[str, Any]:
        return {"elastic": self.space.to_dict()}  # train_supernet builds the elastic supernet of this space

    def build_supernet(self, cfg: Any, splits: Any) -> Any:
        return build_elastic_supernet(self.space, splits.num_classes, splits.in_channels, splits.input_size,
                                      splits.name, cfg.bits, cfg.per_channel, cfg.csq_fraction, cfg.fixed_first_last)

    def load_supernet(self, path: Path) -> Any:
        try:
            return load_elastic_supernet(path, expect_space=self.space, device=estimate_device(self.spec))
        except JaqmooError as exc:
            raise JaqmooError(f"{self.spec.source}: model.elastic / accuracy.checkpoint: {exc}") from None

    def meta(self) -> dict[str, Any]:
        return {"elastic": self.space.to_dict()}

    def supernet_estimators(self, net: Any, splits: Any) -> tuple[Any, Any]:
        data = EvalData.from_splits(splits, self.spec.accuracy.val_images, seed=self.spec.seed,
                                    device=next(net.parameters()).device)
        est = self.memoised(NoGradPairs(ElasticSupernetEstimator(net, data)), net)
        return est, est  # the predictor's samples are memoised too: the re-scoring reuses them

    def fit_predictor(self, net: Any, source: Any, fitted: FittedPredictor, progress: bool) -> Any:
        spec = self.spec
        return fitted(f"arch-{PREDICTOR_KIND}", lambda: fit_arch_predictor(
            net, source, spec.accuracy.predictor_samples, supernet_bits(spec), spec.seed, progress),
            {"elastic": self.space.to_dict()},
            lambda header, arrays: ArchPredictor.from_data(net, header, arrays))

    def memoised(self, estimator: Any, net: Any) -> Any:
        return PairCache(estimator, self.space, net.active_layer_names)


def estimate_device(spec: ExperimentSpec) -> Any:
    """``accuracy.train.device`` (default auto: CUDA when present): the supernet is loaded there and
    every estimate runs there too."""
    return resolve_device(spec.accuracy.train_kwargs.get("device", "auto"))


def supernet_bits(spec: ExperimentSpec) -> tuple[int, ...]:
    """Bit-widths the supernet must serve: every weight/activation choice and fixed-layer bits."""
    q = spec.quantization
    bits = set(q.weight_bits) | set(q.act_bits)
    for _, (w, a) in q.fixed_layers:
        bits |= {w, a}
    return tuple(sorted(bits))


def model_strategy(spec: ExperimentSpec) -> FixedModel | ElasticModel:
    """The strategy of the spec's model: :class:`ElasticModel` with ``model.elastic``, else :class:`FixedModel`."""
    space = elastic_space(spec)
    return FixedModel(spec) if space is None else ElasticModel(spec, space)


__all__ = ["PREDICTOR_KIND", "ElasticModel", "FixedModel", "ModelStrategy", "model_strategy", "supernet_bits"]
