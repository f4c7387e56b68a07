"""The converged QAT truth: per-policy quantization-aware training from a float start, cached.

An estimator (supernet, predictor, PTQ...) is judged by how it ranks policies against what
training each policy would give. :class:`ConvergedTruth` computes that: every policy is
fine-tuned from the same float-trained checkpoint (its steps calibrated,
:func:`~jaqmoo.quant.qat.calibrated_start`) with full LSQ for a fixed budget of optimizer
steps under a schedule fixed in advance (:class:`TruthRecipe`; the budget is shown to be
converged by comparing it with twice the budget, :func:`jaqmoo.quant.fidelity.convergence_check`),
then evaluated with batch-norm statistics re-estimated on fixed training batches.

Each result is a JSON file in the cache directory, named by the hash of everything it
depends on (:class:`TruthKey`: the float start's content hash, the policy, the recipe, the
seed, the training subset's and the evaluation set's content hashes, ``TRAINING_VERSION``
and :data:`TRUTH_VERSION`), so it is computed once, shared by every benchmark, and never
reused for other inputs. A fine-tune in progress checkpoints every ``checkpoint_every``
steps (torch weights only), so a killed run resumes where it stopped; truths may span
sessions.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

from jaqmoo.errors import JaqmooError
from jaqmoo.quant.checkpoints import load_supernet
from jaqmoo.quant.policy import QuantPolicy
from jaqmoo.quant.qat import calibrated_start, qat_finetune
from jaqmoo.quant.supernet import Supernet
from jaqmoo.quant.train import TRAINING_VERSION, iterate_batches, resolve_device
from jaqmoo.safe_write import atomic_write_text

#: Version of the truth procedure (calibration, schedule, evaluation); part of every cache key.
TRUTH_VERSION = 1


@dataclass(frozen=True)
class TruthRecipe:
    """How one policy's truth is trained and evaluated (all part of the cache key).

    ``steps`` is the budget B in optimizer steps; the learning rate follows half a cosine
    from ``lr`` to 0 over exactly ``steps`` steps (fixed before training starts).
    ``bn_batches`` training batches (fixed, seeded with 0) re-estimate the batch-norm
    statistics before evaluation; the step sizes are calibrated on the first of them.
    """

    steps: int
    lr: float = 1e-3
    batch_size: int = 128
    weight_decay: float = 0.0
    bn_batches: int = 8

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise JaqmooError(f"truth recipe: steps must be >= 1 (got {self.steps}); give the budget B in "
                              "optimizer steps")
        if self.lr <= 0 or self.batch_size < 1 or self.bn_batches < 1 or self.weight_decay < 0:
            raise JaqmooError(f"truth recipe: lr > 0, batch_size >= 1, bn_batches >= 1 and weight_decay >= 0 "
                              f"are required (got {asdict(self)})")

    def doubled(self) -> TruthRecipe:
        """The same recipe with twice the budget (the convergence check's 2B)."""
        return replace(self, steps=2 * self.steps)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (the float start's identity in the cache key)."""
    path = Path(path)
    if not path.is_file():
        raise JaqmooError(f"float start {path} does not exist; train one (e.g. `jaqmoo supernet train "
                          f"--float-epochs N --epochs 0 --out {path}`) or give the right path")
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tensors_sha256(*tensors: Tensor) -> str:
    """SHA-256 of tensors' shapes, dtypes and values (a data subset's identity)."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def dataset_sha256(ds: Dataset) -> str:
    """SHA-256 of every image and label of ``ds`` (in-memory datasets are hashed directly)."""
    if isinstance(ds, TensorDataset):
        return tensors_sha256(*ds.tensors)
    xs, ys = zip(*(ds[i] for i in range(len(ds))), strict=True)
    return tensors_sha256(torch.stack(list(xs)), torch.as_tensor(ys))


def policy_genes(policy: QuantPolicy) -> str:
    """A compact text form of a policy's per-layer ``weight/activation`` bits."""
    return ",".join(f"{w}/{a}" for w, a in zip(policy.weight_bits, policy.act_bits, strict=True))


@dataclass(frozen=True)
class TruthKey:
    """Everything one truth value depends on; :meth:`digest` names its cache file."""

    start_sha256: str
    policy: str
    recipe: tuple
    seed: int
    train_sha256: str
    n_train: int
    eval_sha256: str
    n_eval: int
    training_version: int = TRAINING_VERSION
    truth_version: int = TRUTH_VERSION

    def to_dict(self) -> dict:
        d = asdict(self)
        d["recipe"] = dict(self.recipe)
        return d

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:32]


def _write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=1), "a truth result")


class TruthCache:
    """One JSON file per truth value under ``root`` (``<key digest>.json``), plus the partial
    checkpoint of a fine-tune in progress (``<key digest>.partial.pt``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, key: TruthKey) -> Path:
        return self.root / f"{key.digest()}.json"

    def partial(self, key: TruthKey) -> Path:
        return self.root / f"{key.digest()}.partial.pt"

    def get(self, key: TruthKey) -> dict | None:
        """The stored result of ``key`` or None; a damaged or mismatched file is an error naming it."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise JaqmooError(f"truth cache file {path} is damaged ({exc}); delete it to recompute that "
                              "policy's truth") from exc
        if not isinstance(data, dict) or data.get("key") != key.to_dict() or \
                not isinstance(data.get("accuracy"), int | float):
            raise JaqmooError(f"truth cache file {path} does not hold the truth of its key; delete it to "
                              "recompute that policy's truth")
        return data

    def put(self, key: TruthKey, result: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _write_json(self.path(key), {"key": key.to_dict(), **result})


def fixed_batches(train: Dataset, n: int, batch_size: int) -> list[Tensor]:
    """The first ``n`` batches of ``train`` in an order seeded with 0 (calibration images)."""
    gen = torch.Generator().manual_seed(0)
    return [x for x, _ in iterate_batches(train, batch_size, True, gen, drop_last=True)][:n]


class ConvergedTruth:
    """Per-policy QAT truth from the float start at ``start_path`` (see the module docstring).

    ``train`` is the training subset; ``images``/``labels`` the evaluation set (for bands:
    the 10,000 test images). ``accuracy(policy, seed)`` returns the cached value or trains it.
    """

    def __init__(self, start_path: str | Path, train: Dataset, images: Tensor, labels: Tensor,
                 recipe: TruthRecipe, cache_dir: str | Path, device: str = "cpu", checkpoint_every: int = 100,
                 log: Callable[[str], None] | None = None) -> None:
        self.start_path = Path(start_path)
        self.start_sha256 = file_sha256(self.start_path)
        self.train = train
        self.images, self.labels = images, labels
        self.recipe = recipe
        self.cache = TruthCache(cache_dir)
        self.device = resolve_device(device)
        self.checkpoint_every = checkpoint_every
        self.log = log
        self.train_sha256 = dataset_sha256(train)
        self.eval_sha256 = tensors_sha256(images, labels)
        self._start: Supernet | None = None
        self._bn: list[Tensor] | None = None

    def with_recipe(self, recipe: TruthRecipe) -> ConvergedTruth:
        """The same truth (start, data, cache) under another recipe (e.g. :meth:`TruthRecipe.doubled`)."""
        other = copy.copy(self)
        other.recipe = recipe
        return other

    def key(self, policy: QuantPolicy, seed: int) -> TruthKey:
        return TruthKey(self.start_sha256, policy_genes(policy), tuple(sorted(asdict(self.recipe).items())),
                        int(seed), self.train_sha256, len(self.train), self.eval_sha256, len(self.images))

    def cached(self, policy: QuantPolicy, seed: int) -> dict | None:
        """The stored result (accuracy, seconds, ...) of ``policy`` at ``seed``, None when not computed yet."""
        return self.cache.get(self.key(policy, seed))

    def _start_net(self) -> Supernet:
        if self._start is None:
            self._bn = [b.to(self.device) for b in fixed_batches(self.train, self.recipe.bn_batches,
                                                                  self.recipe.batch_size)]
            net = load_supernet(self.start_path, device=self.device)
            self._start = calibrated_start(net, self._bn[0], self.device)
            self._start.set_csq_fraction(0.0)
        return self._start

    def accuracy(self, policy: QuantPolicy, seed: int = 0) -> float:
        """The truth of ``policy`` at ``seed`` (fraction): from the cache, else trained (and cached)."""
        key = self.key(policy, seed)
        hit = self.cache.get(key)
        if hit is not None:
            return float(hit["accuracy"])
        start = self._start_net()
        policy = start.check_policy(policy)
        partial = self.cache.partial(key)
        resumed = partial.is_file()
        t0 = time.perf_counter()
        net = copy.deepcopy(start)
        net.set_policy(policy)
        r = self.recipe
        self.cache.root.mkdir(parents=True, exist_ok=True)
        qat_finetune(net, self.train, r.steps, r.lr, r.batch_size, seed, self.device, r.weight_decay,
                     checkpoint=partial, checkpoint_every=self.checkpoint_every)
        with torch.inference_mode():
            net.recalibrate_bn(self._bn)
            acc = net.accuracy(self.images.to(self.device), self.labels.to(self.device))
        seconds = time.perf_counter() - t0
        self.cache.put(key, {"accuracy": acc, "seconds": seconds, "resumed": resumed,
                             "threads": torch.get_num_threads(), "device": str(self.device),
                             "load_average": list(os.getloadavg()), "finished_unix": time.time()})
        if self.log is not None:
            self.log(f"truth {r.steps} steps seed {seed}: accuracy {acc:.4f} in {seconds:.0f} s"
                     f"{' (resumed)' if resumed else ''} -> {self.cache.path(key).name}")
        return float(acc)

    def accuracies(self, policies: Sequence[QuantPolicy], seed: int = 0) -> np.ndarray:
        """:meth:`accuracy` of every policy (each cached as soon as it is done)."""
        return np.array([self.accuracy(p, seed) for p in policies], dtype=float)


__all__ = ["ConvergedTruth", "TRUTH_VERSION", "TruthCache", "TruthKey", "TruthRecipe", "dataset_sha256",
           "file_sha256", "fixed_batches", "policy_genes", "tensors_sha256"]
