"""Accuracy side of a search: supernet checkpoint (load or train), estimator, cache.

:func:`obtain_accuracy` returns an :class:`AccuracySetup`: the estimator used inside the
search loop (the supernet itself, or a predictor fitted on supernet samples), the supernet
estimator used to re-score the final front (predictor runs only), the layers the supernet
keeps at fixed bits, and timings. Every estimator is wrapped in a :class:`CachedEstimator`:
a policy evaluated once (the search revisits many) is never estimated again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jaqmoo.errors import JaqmooError
from jaqmoo.quant.policy import QuantPolicy
from jaqmoo.search.spec import ExperimentSpec


class CachedEstimator:
    """Memoises ``estimate(policies)`` per (weight bits, activation bits)."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator
        self.cache: dict[tuple, float] = {}
        self.calls = 0

    @staticmethod
    def key(policy: QuantPolicy) -> tuple:
        return (policy.weight_bits, policy.act_bits)

    def estimate(self, policies: Sequence[QuantPolicy]) -> np.ndarray:
        todo = []
        for p in policies:
            k = self.key(p)
            if k not in self.cache and k not in {self.key(q) for q in todo}:
                todo.append(p)
        if todo:
            values = np.asarray(self.estimator.estimate(todo), dtype=float).reshape(-1)
            if len(values) != len(todo):
                raise RuntimeError(f"accuracy estimator returned {len(values)} values for {len(todo)} policies")
            self.calls += len(todo)
            for p, v in zip(todo, values, strict=True):
                self.cache[self.key(p)] = float(v)
        return np.asarray([self.cache[self.key(p)] for p in policies], dtype=float)


@dataclass
class AccuracySetup:
    """What the search needs from the accuracy side."""

    search_estimator: Any
    rescore_estimator: Any | None
    fixed_layers: dict[int, tuple[int, int]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)


#: TrainConfig fields the spec decides (not settable under accuracy.train)
_SPEC_OWNED = ("model", "dataset", "out", "bits", "fixed_first_last", "seed", "progress", "width_mult",
               "data_root", "resume", "extra", "input_size")


def _train_kwargs(spec: ExperimentSpec) -> dict:
    """``accuracy.train`` checked against :class:`jaqmoo.quant.train.TrainConfig`'s fields."""
    from dataclasses import fields

    from jaqmoo.quant.train import TrainConfig
    from jaqmoo.search.spec import _suggest

    types = {f.name: str(f.type) for f in fields(TrainConfig) if f.name not in _SPEC_OWNED}
    allowed = list(types)
    kwargs = {}
    for key, value in spec.accuracy.train_kwargs.items():
        if key not in allowed:
            raise JaqmooError(f"{spec.source}: accuracy.train.{key}: unknown training option; "
                              f"{_suggest(key, allowed)}allowed: {', '.join(allowed)}")
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
        raise JaqmooError(f"{where}: expected {expected}, got {type(value).__name__} {value!r}")
    return value


def check_train_options(spec: ExperimentSpec) -> None:
    """Validate ``accuracy.train`` (called before any work starts)."""
    from jaqmoo.quant.train import TrainConfig

    try:
        TrainConfig(**_train_kwargs(spec)).validate()
    except TypeError as exc:
        raise JaqmooError(f"{spec.source}: accuracy.train: {exc}") from exc
    except JaqmooError as exc:
        raise JaqmooError(f"{spec.source}: accuracy.train: {exc}") from exc


def _load_pretrained(supernet: Any, path: Path) -> None:
    """Float weights of the plain model (a state_dict) into the supernet's shared weights."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise JaqmooError(f"model.checkpoint {path}: not a torch state_dict ({type(exc).__name__}: {exc})") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise JaqmooError(f"model.checkpoint {path}: expected a state_dict (a mapping of tensors)")
    try:
        result = supernet.model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise JaqmooError(f"model.checkpoint {path}: its weights do not fit {supernet.meta.model}: "
                          f"{str(exc).splitlines()[0]}") from exc
    if result.unexpected_keys:
        raise JaqmooError(f"model.checkpoint {path}: keys {result.unexpected_keys[:5]} are not in "
                          f"{supernet.meta.model}; it was saved from another model")


def supernet_bits(spec: ExperimentSpec) -> tuple[int, ...]:
    """Bit-widths the supernet must serve: every weight/activation choice and fixed-layer bits."""
    q = spec.quantization
    bits = set(q.weight_bits) | set(q.act_bits)
    for _, (w, a) in q.fixed_layers:
        bits |= {w, a}
    return tuple(sorted(bits))


def _first_last(spec: ExperimentSpec) -> int | None:
    fixed = dict(spec.quantization.fixed_layers)
    first, last = fixed.get("first"), fixed.get("last")
    if first is not None and first == last and first[0] == first[1]:
        return first[0]
    return None


def _training_finished(path: Path) -> bool:
    """False for a checkpoint that training wrote before its last epoch (a killed run)."""
    from jaqmoo.quant.supernet import read_checkpoint

    payload = read_checkpoint(path)
    config = payload.get("config") or {}
    epochs = config.get("epochs") if isinstance(config, dict) else None
    if epochs is None:
        return True
    epochs = int(epochs) + int(config.get("float_epochs", 0))
    return int(payload.get("epoch", epochs)) >= epochs


def _train_config(spec: ExperimentSpec, splits: Any, ckpt: Path, progress: bool = True) -> Any:
    """The :class:`TrainConfig` a spec trains its supernet with (``extra`` names the pretrained start)."""
    from jaqmoo.quant.train import TrainConfig
    from jaqmoo.search.elastic_run import elastic_space

    pretrained = str(Path(spec.model.checkpoint).expanduser().resolve()) if spec.model.checkpoint else None
    extra: dict[str, Any] = {"pretrained": pretrained, "split_seed": spec.dataset.split_seed}
    space = elastic_space(spec)
    if space is not None:  # train_supernet builds the elastic supernet of this space
        extra["elastic"] = space.to_dict()
    return TrainConfig(model=spec.model.name, dataset=splits.name, out=str(ckpt), width_mult=spec.model.width_mult,
                       bits=supernet_bits(spec), fixed_first_last=_first_last(spec), seed=spec.seed,
                       progress=progress, data_root=spec.dataset.root, input_size=spec.dataset.input_size,
                       extra=extra, **_train_kwargs(spec))


def expected_identity(spec: ExperimentSpec, splits: Any) -> dict:
    """The supernet identity (:mod:`jaqmoo.quant.identity`) this spec needs."""
    from dataclasses import asdict

    from jaqmoo.quant.identity import make_identity

    cfg = _train_config(spec, splits, Path("unused.pt"))
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
        kind = f"{spec.model.name}-elastic" if spec.model.elastic is not None else spec.model.name
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
    from jaqmoo.quant.supernet import read_checkpoint

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
    from jaqmoo.quant import supernet as sn

    ckpt = supernet_path(spec, splits, default_checkpoint)
    t0 = time.perf_counter()
    if ckpt.is_file():
        check_identity(spec, splits, ckpt)
    from jaqmoo.search.elastic_run import elastic_space

    space = elastic_space(spec)
    if ckpt.is_file() and _training_finished(ckpt):
        net = _load(ckpt, spec, space)
        missing = set(supernet_bits(spec)) - set(net.bits)
        if missing:
            raise JaqmooError(f"{spec.source}: accuracy.checkpoint {ckpt} was trained for bits {list(net.bits)}, "
                              f"the spec also uses {sorted(missing)}; delete the checkpoint to retrain or narrow the bits")
        if net.meta.dataset and net.meta.dataset != splits.name:
            raise JaqmooError(f"{spec.source}: accuracy.checkpoint {ckpt} was trained on {net.meta.dataset!r}, "
                              f"not {splits.name!r}; point accuracy.checkpoint elsewhere to train a new one")
        return net, time.perf_counter() - t0, False
    from jaqmoo.quant.train import train_supernet

    cfg = _train_config(spec, splits, ckpt, progress)
    train_splits = splits
    if cfg.max_train is not None:  # a seeded subset of the training images (same validation split)
        from jaqmoo.data import load_dataset

        train_splits = load_dataset(spec.dataset.name, root=spec.dataset.root, seed=spec.dataset.split_seed,
                                    input_size=spec.dataset.input_size, max_train=cfg.max_train)
    if space is not None:
        from jaqmoo.quant.elastic import build_elastic_supernet

        net = build_elastic_supernet(space, splits.num_classes, splits.in_channels, splits.input_size, splits.name,
                                     cfg.bits, cfg.per_channel, cfg.csq_fraction, cfg.fixed_first_last)
    else:
        net = sn.build_supernet(cfg.model, splits.num_classes, splits.in_channels, splits.input_size, cfg.width_mult,
                                splits.name, cfg.bits, cfg.per_channel, cfg.csq_fraction, cfg.fixed_first_last)
    if spec.model.checkpoint:
        _load_pretrained(net, Path(spec.model.checkpoint).expanduser())
    if ckpt.is_file():  # an interrupted training run: continue it from its last epoch
        cfg.resume = True
    path = train_supernet(cfg, splits=train_splits, supernet=net)
    return _load(path, spec, space), time.perf_counter() - t0, True


def _load(path: Path, spec: ExperimentSpec, space: Any) -> Any:
    """The fixed supernet, or the elastic one of ``space`` (refusing another architecture space)."""
    from jaqmoo.quant.checkpoints import load_supernet
    from jaqmoo.quant.train import resolve_device

    device = resolve_device(_train_kwargs(spec).get("device", "auto"))  # accuracy.train.device: estimates run there too
    if space is None:
        return load_supernet(path, expect_model=spec.model.name, device=device)
    from jaqmoo.quant.elastic import load_elastic_supernet

    try:
        return load_elastic_supernet(path, expect_space=space, device=device)
    except JaqmooError as exc:
        raise JaqmooError(f"{spec.source}: model.elastic / accuracy.checkpoint: {exc}") from None


def _load_predictor(path: Path, key: dict) -> Any | None:
    import pickle

    if not path.is_file():
        return None
    try:
        with open(path, "rb") as fh:
            saved = pickle.load(fh)
    except Exception:  # stale or damaged cache: refit
        return None
    return saved.get("predictor") if saved.get("key") == key else None


def _save_predictor(path: Path, key: dict, predictor: Any) -> None:
    import os
    import pickle

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        pickle.dump({"key": key, "predictor": predictor}, fh)
    os.replace(tmp, path)


PREDICTOR_KIND = "monotone"  # see jaqmoo.quant.estimators.PredictorEstimator


def checked_supernet(spec: ExperimentSpec, splits: Any, layer_names: Sequence[str], default_checkpoint: Path,
                     progress: bool = True) -> tuple[Any, dict[str, float], dict[int, tuple[int, int]], Path, dict]:
    """The supernet (loaded or trained, its layers checked against ``layer_names``), its timings,
    the layers it keeps at fixed bits, its checkpoint path and the run's ``meta.json`` entries."""
    net, seconds, trained = obtain_supernet(spec, splits, default_checkpoint, progress)
    if tuple(net.layer_names) != tuple(layer_names):
        which = "the largest network of model.elastic" if spec.model.elastic is not None else f"model {spec.model.name}"
        raise JaqmooError(f"{spec.source}: the supernet's layers do not match {which}'s; "
                          "delete accuracy.checkpoint to retrain it")
    timings = {"supernet_train" if trained else "supernet_load": seconds}
    fixed = {i: (b, b) for i, b in net.fixed_layers().items()}
    ckpt = supernet_path(spec, splits, default_checkpoint)
    meta = {"supernet_checkpoint": str(ckpt), "supernet_trained_now": trained,
            "supernet_identity": expected_identity(spec, splits)}
    return net, timings, fixed, ckpt, meta


def cached_predictor(spec: ExperimentSpec, default_checkpoint: Path, ckpt: Path, kind: str, fit: Any,
                     extra_key: dict | None = None) -> tuple[Any, float]:
    """The predictor fitted for this supernet and spec: loaded from ``predictor.pkl`` next to the
    run (so ``--resume`` does not refit it) when its key matches, else ``fit()`` and saved there.
    The key names the training-sample draw (:data:`~jaqmoo.quant.estimators.SAMPLING_VERSION`):
    a predictor fitted on samples drawn another way is refitted, not reused."""
    from jaqmoo.quant.estimators import SAMPLING_VERSION

    t0 = time.perf_counter()
    cache = default_checkpoint.parent / "predictor.pkl"
    key = {"checkpoint": str(ckpt.resolve()), "checkpoint_mtime": ckpt.stat().st_mtime,
           "n_samples": spec.accuracy.predictor_samples, "choices": list(supernet_bits(spec)),
           "seed": spec.seed, "val_images": spec.accuracy.val_images, "kind": kind, "sampling": SAMPLING_VERSION,
           **(extra_key or {})}
    predictor = _load_predictor(cache, key)
    if predictor is None:
        predictor = fit()
        _save_predictor(cache, key, predictor)
    return predictor, time.perf_counter() - t0


def obtain_accuracy(spec: ExperimentSpec, splits: Any, layer_names: Sequence[str], default_checkpoint: Path,
                    progress: bool = True) -> AccuracySetup:
    """Supernet (loaded or trained) and the estimators of the search and of the final re-scoring."""
    from jaqmoo.quant.estimators import PredictorEstimator, SupernetEstimator

    if spec.model.elastic is not None:  # (architecture, bits) pairs: jaqmoo.search.elastic_run
        from jaqmoo.search.elastic_run import obtain_elastic_accuracy

        return obtain_elastic_accuracy(spec, splits, layer_names, default_checkpoint, progress)
    net, timings, fixed, ckpt, meta = checked_supernet(spec, splits, layer_names, default_checkpoint, progress)
    supernet_est = SupernetEstimator(net, splits, max_images=spec.accuracy.val_images, seed=spec.seed)
    if spec.accuracy.estimator == "supernet":
        return AccuracySetup(CachedEstimator(supernet_est), None, fixed, timings, meta)
    predictor, timings["predictor_fit"] = cached_predictor(
        spec, default_checkpoint, ckpt, PREDICTOR_KIND,
        lambda: PredictorEstimator.fit_from(supernet_est, n_samples=spec.accuracy.predictor_samples,
                                            choices=supernet_bits(spec), seed=spec.seed, kind=PREDICTOR_KIND,
                                            progress=progress))
    meta["predictor_fit_error"] = getattr(predictor, "fit_error", None)
    return AccuracySetup(CachedEstimator(predictor), CachedEstimator(supernet_est), fixed, timings, meta)
