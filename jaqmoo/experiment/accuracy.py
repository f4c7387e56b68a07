"""Accuracy side of a search: supernet checkpoint (load or train), estimator, cache.

:func:`obtain_accuracy` returns an :class:`AccuracySetup`: the estimator used inside the
search loop (the supernet itself, or a predictor fitted on supernet samples), the supernet
estimator used to re-score the final front (predictor runs only), the layers the supernet
keeps at fixed bits, and timings. What differs between a fixed network and an elastic space is
the model strategy's (:mod:`jaqmoo.experiment.strategy`); every estimator is memoised
(:mod:`jaqmoo.experiment.caches`): a policy evaluated once is never estimated again.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from jaqmoo.datafile import load_bundle, save_bundle, tag_floats
from jaqmoo.errors import JaqmooError, did_you_mean
from jaqmoo.experiment.estimators import ESTIMATORS
from jaqmoo.experiment.spec import ExperimentSpec
from jaqmoo.experiment.strategy import model_strategy, supernet_bits
from jaqmoo.quant.sanity import float_phase_accuracy
from jaqmoo.quant.supernet import read_checkpoint
from jaqmoo.strict import shown


@dataclass
class AccuracySetup:
    """What the search needs from the accuracy side."""

    search_estimator: Any
    rescore_estimator: Any | None
    fixed_layers: dict[int, tuple[int, int]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)


#: TrainConfig fields the spec decides (not settable under accuracy.train; public: the spec reference lists the rest)
SPEC_OWNED_TRAIN_FIELDS = ("model", "dataset", "out", "bits", "fixed_first_last", "seed", "progress", "width_mult",
               "data_root", "resume", "extra", "input_size")


def train_kwargs(spec: ExperimentSpec) -> dict:
    """``accuracy.train`` checked against :class:`jaqmoo.quant.train.TrainConfig`'s fields."""
    from dataclasses import fields

    from jaqmoo.quant.train import TrainConfig

    types = {f.name: str(f.type) for f in fields(TrainConfig) if f.name not in SPEC_OWNED_TRAIN_FIELDS}
    allowed = list(types)
    kwargs = {}
    for key, value in spec.accuracy.train_kwargs.items():
        if key not in allowed:
            raise JaqmooError(f"{spec.source}: accuracy.train.{key}: unknown training option; "
                              f"{did_you_mean(key, allowed)}allowed: {', '.join(allowed)}")
        kwargs[key] = _typed_option(value, types[key], f"{spec.source}: accuracy.train.{key}")
    return kwargs


_OPTION_TYPES = {"int": int, "float": float, "bool": bool, "str": str}


def _typed_option(value: Any, type_name: str, where: str) -> Any:
    """``value`` checked against a TrainConfig annotation such as ``"int | None"`` (ints widen to float)."""
    parts = [t.strip() for t in type_name.split("|")]
    if value is None and "None" in parts:
        return None
    base = _OPTION_TYPES.get(parts[0])
    if base is None:
        return value
    ok = isinstance(value, base) and (base is bool or not isinstance(value, bool))
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        expected = " or ".join(["a number" if base is float else "an integer" if base is int else
                                "true/false" if base is bool else "a string"] + (["null"] if "None" in parts else []))
        raise JaqmooError(f"{where}: expected {expected}, got {type(value).__name__} {shown(value)}")
    return value


def check_train_options(spec: ExperimentSpec) -> None:
    """Validate ``accuracy.train`` (called before any work starts)."""
    from jaqmoo.quant.train import TrainConfig

    try:
        TrainConfig(**train_kwargs(spec)).validate()
    except TypeError as exc:
        raise JaqmooError(f"{spec.source}: accuracy.train: {exc}") from exc
    except JaqmooError as exc:
        raise JaqmooError(f"{spec.source}: accuracy.train: {exc}") from exc


def load_float_start(supernet: Any, path: Path) -> None:
    """Float weights of the plain model (a torchvision weights file or a user's state_dict, keys
    matched exactly: :mod:`jaqmoo.models.weights`) into the supernet's shared weights."""
    from jaqmoo.models import build_model
    from jaqmoo.models.weights import check_state_dict, read_state_dict

    state = read_state_dict(path, "model.checkpoint")
    m = supernet.meta
    with torch.device("meta"):  # keys and shapes only
        plain = build_model(m.model, m.num_classes, m.in_channels, m.input_size, m.width_mult)
    check_state_dict(plain, state, f"model.checkpoint {path}", m.model)
    result = supernet.model.load_state_dict(state, strict=False)
    if result.unexpected_keys:  # the plain model has them, so the wrapped one does too
        raise JaqmooError(f"model.checkpoint {path}: keys {result.unexpected_keys[:5]} are not in the supernet of "
                          f"{m.model}")


def first_last_bits(spec: ExperimentSpec) -> int | None:
    """The bits of ``fixed_layers: {first: B, last: B}`` when both are the same uniform B (the
    supernet then keeps them fixed), else None."""
    fixed = dict(spec.quantization.fixed_layers)
    first, last = fixed.get("first"), fixed.get("last")
    if first is not None and first == last and first[0] == first[1]:
        return first[0]
    return None


def _training_finished(path: Path) -> bool:
    """False for a checkpoint that training wrote before its last epoch (a killed run)."""
    payload = read_checkpoint(path)
    config = payload.get("config") or {}
    epochs = config.get("epochs") if isinstance(config, dict) else None
    if epochs is None:
        return True
    epochs = int(epochs) + int(config.get("float_epochs", 0))
    return int(payload.get("epoch", epochs)) >= epochs


def train_config(spec: ExperimentSpec, splits: Any, ckpt: Path, progress: bool = True) -> Any:
    """The :class:`TrainConfig` a spec trains its supernet with (``extra`` names the pretrained start)."""
    from jaqmoo.quant.train import TrainConfig

    pretrained = str(Path(spec.model.checkpoint).expanduser().resolve()) if spec.model.checkpoint else None
    extra: dict[str, Any] = {"pretrained": pretrained, "split_seed": spec.dataset.split_seed,
                             **model_strategy(spec).train_extra()}
    kwargs = train_kwargs(spec)
    if pretrained is not None:
        kwargs["float_epochs"] = 0  # the float start is the given weights: no float epochs
    return TrainConfig(model=spec.model.name, dataset=splits.name, out=str(ckpt), width_mult=spec.model.width_mult,
                       bits=supernet_bits(spec), fixed_first_last=first_last_bits(spec), seed=spec.seed,
                       progress=progress, data_root=spec.dataset.root, input_size=spec.dataset.input_size,
                       extra=extra, **kwargs)


def expected_identity(spec: ExperimentSpec, splits: Any) -> dict:
    """The supernet identity (:mod:`jaqmoo.quant.identity`) this spec needs."""
    from dataclasses import asdict

    from jaqmoo.quant.identity import make_identity

    cfg = train_config(spec, splits, Path("unused.pt"))
    meta = {"model": cfg.model, "width_mult": cfg.width_mult, "in_channels": splits.in_channels,
            "input_size": splits.input_size, "num_classes": splits.num_classes, "dataset": splits.name,
            "bits": list(cfg.bits), "fixed_first_last": cfg.fixed_first_last, "per_channel": cfg.per_channel,
            "csq_fraction": cfg.csq_fraction}
    return make_identity(meta, asdict(cfg), elastic=cfg.extra.get("elastic"))


def supernet_path(spec: ExperimentSpec, splits: Any, default_checkpoint: Path) -> Path:
    """``accuracy.checkpoint``; else ``accuracy.cache_dir/<model>-<dataset>-<identity hash>.pt``; else the default."""
    from jaqmoo.quant.identity import identity_hash

    if spec.accuracy.checkpoint:
        return Path(spec.accuracy.checkpoint).expanduser()
    if spec.accuracy.cache_dir:
        # a model reference (torchvision:resnet50, pkg.mod:build) as one plain file-name part
        kind = "".join(c if c.isalnum() or c in "_.=+-" else "_" for c in model_strategy(spec).kind)
        from jaqmoo.quant.train import TRAINING_VERSION

        # the training code's version is hashed into the name (not into the identity an explicit
        # checkpoint is checked against): a cache made by older training code is not reused
        ident = {**expected_identity(spec, splits), "training_version": TRAINING_VERSION}
        name = f"{kind}-{splits.name}-{identity_hash(ident)}.pt"
        return Path(spec.accuracy.cache_dir).expanduser() / name
    return default_checkpoint


def check_identity(spec: ExperimentSpec, splits: Any, ckpt: Path) -> None:
    """Refuse a supernet checkpoint whose identity differs from what ``spec`` needs (listing the keys)."""
    from jaqmoo.quant.identity import identity_differences, identity_of_checkpoint

    diffs = identity_differences(identity_of_checkpoint(read_checkpoint(ckpt)), expected_identity(spec, splits))
    if diffs:
        listed = "\n  ".join(diffs)
        raise JaqmooError(
            f"{spec.source}: accuracy.checkpoint {ckpt} is a supernet for a different network or training; "
            f"these keys differ (checkpoint -> spec):\n  {listed}\nIts accuracies would not belong to this network. "
            "Point accuracy.checkpoint at another file, or use accuracy.cache_dir (cache file names derive from "
            "a hash of these keys) to train a matching supernet")


def obtain_supernet(spec: ExperimentSpec, splits: Any, default_checkpoint: Path,
                    progress: bool = True) -> tuple[Any, float, bool]:
    """Load the supernet checkpoint if it exists (after checking its identity), else train it."""
    ckpt = supernet_path(spec, splits, default_checkpoint)
    t0 = time.perf_counter()
    if ckpt.is_file():
        check_identity(spec, splits, ckpt)
    model = model_strategy(spec)
    if ckpt.is_file() and _training_finished(ckpt):
        net = model.load_supernet(ckpt)
        missing = set(supernet_bits(spec)) - set(net.bits)
        if missing:
            raise JaqmooError(f"{spec.source}: accuracy.checkpoint {ckpt} was trained for bits {list(net.bits)}, "
                              f"the spec also uses {sorted(missing)}; delete the checkpoint to retrain or narrow the bits")
        if net.meta.dataset and net.meta.dataset != splits.name:
            raise JaqmooError(f"{spec.source}: accuracy.checkpoint {ckpt} was trained on {net.meta.dataset!r}, "
                              f"not {splits.name!r}; point accuracy.checkpoint elsewhere to train a new one")
        return net, time.perf_counter() - t0, False
    from jaqmoo.quant.train import train_supernet

    cfg = train_config(spec, splits, ckpt, progress)
    train_splits = splits
    if cfg.max_train is not None:  # a seeded subset of the training images (same validation split)
        from jaqmoo.data import load_dataset

        train_splits = load_dataset(spec.dataset.name, root=spec.dataset.root, seed=spec.dataset.split_seed,
                                    input_size=spec.dataset.input_size, max_train=cfg.max_train)
    net = model.build_supernet(cfg, splits)
    if spec.model.checkpoint:
        load_float_start(net, Path(spec.model.checkpoint).expanduser())
    if ckpt.is_file():  # an interrupted training run: continue it from its last epoch
        cfg.resume = True
    path = train_supernet(cfg, splits=train_splits, supernet=net)
    return model.load_supernet(path), time.perf_counter() - t0, True


PREDICTOR_FILE = "predictor.npz"
OLD_PREDICTOR_FILE = "predictor.pkl"  # written before data-only predictors; never read


def _load_predictor(path: Path, key: dict, restore: Callable[[dict, dict], Any]) -> Any | None:
    """The stored predictor when its key matches ``key``; ``None`` (refit) when absent, stale or damaged."""
    if not path.is_file():
        return None
    try:
        header, arrays = load_bundle(path, "it is refitted")
        if header.get("key") != tag_floats(key):
            return None
        return restore(header.get("predictor") or {}, arrays)
    except JaqmooError as exc:
        warnings.warn(f"{path}: ignoring an unusable predictor file ({str(exc)[:200]}); it is refitted",
                      stacklevel=2)
        return None


def _save_predictor(path: Path, key: dict, predictor: Any) -> None:
    data = predictor.to_data() if hasattr(predictor, "to_data") else None
    if data is None:
        return  # not a linear fit (the mlp kind): refitted on resume
    header, arrays = data
    save_bundle(path, {"key": tag_floats(key), "predictor": tag_floats(header)}, arrays, what="the fitted predictor")


def checked_supernet(spec: ExperimentSpec, splits: Any, layer_names: Sequence[str], default_checkpoint: Path,
                     progress: bool = True) -> tuple[Any, dict[str, float], dict[int, tuple[int, int]], Path, dict]:
    """The supernet (loaded or trained, its layers checked against ``layer_names``), its timings,
    the layers it keeps at fixed bits, its checkpoint path and the run's ``meta.json`` entries."""
    net, seconds, trained = obtain_supernet(spec, splits, default_checkpoint, progress)
    if tuple(net.layer_names) != tuple(layer_names):
        raise JaqmooError(f"{spec.source}: the supernet's layers do not match {model_strategy(spec).description}'s; "
                          "delete accuracy.checkpoint to retrain it")
    timings = {"supernet_train" if trained else "supernet_load": seconds}
    fixed = {i: (b, b) for i, b in net.fixed_layers().items()}
    ckpt = supernet_path(spec, splits, default_checkpoint)
    meta = {"supernet_checkpoint": str(ckpt), "supernet_trained_now": trained,
            "supernet_identity": expected_identity(spec, splits),
            "float_accuracy": float_phase_accuracy(read_checkpoint(ckpt).get("history")),
            # torch's summation order depends on it: `jaqmoo supernet eval` reproduces a point's accuracy
            # bit for bit with the same thread count
            "torch_threads": torch.get_num_threads()}
    return net, timings, fixed, ckpt, meta


def cached_predictor(spec: ExperimentSpec, default_checkpoint: Path, ckpt: Path, kind: str, fit: Any,
                     extra_key: dict | None = None,
                     restore: Callable[[dict, dict], Any] | None = None) -> tuple[Any, float]:
    """The predictor fitted for this supernet and spec: loaded from ``predictor.npz`` next to the
    run (so ``--resume`` does not refit it) when its key matches, else ``fit()`` and saved there.
    The file is plain data (coefficients and a JSON header, :mod:`jaqmoo.datafile`); ``restore``
    rebuilds the predictor from it (default: :meth:`PredictorEstimator.from_data`). An old
    ``predictor.pkl`` is never opened (a warning says it can be deleted).
    The key names the training-sample draw (:data:`~jaqmoo.quant.estimators.SAMPLING_VERSION`):
    a predictor fitted on samples drawn another way is refitted, not reused."""
    from jaqmoo.quant.estimators import SAMPLING_VERSION

    t0 = time.perf_counter()
    from jaqmoo.quant.estimators import PredictorEstimator

    cache = default_checkpoint.parent / PREDICTOR_FILE
    old = default_checkpoint.parent / OLD_PREDICTOR_FILE
    if old.exists():
        warnings.warn(f"{old} is an old pickled predictor, which jaqmoo never opens (a pickle can run code); "
                      f"the predictor is refitted and stored as {cache.name}; delete {old}", stacklevel=2)
    key = {"checkpoint": str(ckpt.resolve()), "checkpoint_mtime": ckpt.stat().st_mtime,
           "n_samples": spec.accuracy.predictor_samples, "choices": list(supernet_bits(spec)),
           "seed": spec.seed, "val_images": spec.accuracy.val_images, "kind": kind, "sampling": SAMPLING_VERSION,
           **(extra_key or {})}
    predictor = _load_predictor(cache, key, restore or PredictorEstimator.from_data)
    if predictor is None:
        predictor = fit()
        _save_predictor(cache, key, predictor)
    return predictor, time.perf_counter() - t0


def obtain_accuracy(spec: ExperimentSpec, splits: Any, layer_names: Sequence[str], default_checkpoint: Path,
                    progress: bool = True) -> AccuracySetup:
    """Supernet (loaded or trained) and the estimators of the search and of the final re-scoring
    (the model strategy's: per policy for a fixed network, per (architecture, bits) pair for an
    elastic one)."""
    model = model_strategy(spec)
    net, timings, fixed, ckpt, meta = checked_supernet(spec, splits, layer_names, default_checkpoint, progress)
    meta.update(model.meta())

    def fitted(kind: str, fit: Any, extra_key: dict | None,
               restore: Callable[[dict, dict], Any] | None = None) -> Any:
        predictor, timings["predictor_fit"] = cached_predictor(spec, default_checkpoint, ckpt, kind, fit, extra_key,
                                                               restore)
        return predictor

    search_est, rescore_est, predictor = ESTIMATORS.lookup(spec.accuracy.estimator)(model, net, splits, fitted, progress)
    if predictor is not None:
        meta["predictor_fit_error"] = getattr(predictor, "fit_error", None)
    return AccuracySetup(search_est, rescore_est, fixed, timings, meta)
