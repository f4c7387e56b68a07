"""Dataset registry: ``load_dataset(name, ...) -> DatasetSplits``.

Supported names:

* ``digits`` — scikit-learn's 8x8 hand-written digits (1,797 images, always available).
* ``fashion-mnist`` — read from the Debian package ``dataset-fashion-mnist`` (idx files
  under ``/usr/share/datasets/fashion-mnist``) or from ``root``; with ``download=True``
  torchvision downloads it when no local copy exists.
* ``cifar10`` — torchvision's CIFAR-10 layout under ``root`` (``download=True`` fetches it).
* ``imagefolder`` — an ImageNet-style folder ``root/train/<class>/*.jpg`` and
  ``root/val/<class>/*.jpg`` (optionally ``root/test``), resized to ``input_size``.

Splits are deterministic for a given ``seed``: the validation split is carved out of the
training images with a seeded permutation; the test split is the dataset's own test set
(``digits``: a seeded 20 % hold-out).
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from jaqmoo.errors import JaqmooError

DATASETS = ("digits", "fashion-mnist", "cifar10", "imagefolder")
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass
class DatasetSplits:
    """Train / validation / test datasets of one image-classification task.

    Every item is ``(image tensor [C, H, W] float32 normalized, label int64)``.
    """

    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    num_classes: int
    in_channels: int
    input_size: int
    source: str

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.input_size, self.input_size)

    def describe(self) -> str:
        return (
            f"{self.name}: {len(self.train)} train / {len(self.val)} val / {len(self.test)} test, "
            f"{self.num_classes} classes, {self.in_channels}x{self.input_size}x{self.input_size} "
            f"(from {self.source})"
        )


def _split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if not 0.0 < val_fraction < 1.0:
        raise JaqmooError(f"val_fraction must be in (0, 1) (got {val_fraction})")
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(n * val_fraction)))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _limit(ds: Dataset, limit: int | None, seed: int) -> Dataset:
    """A seeded random subset of at most ``limit`` items (the whole dataset when None)."""
    if limit is None or limit >= len(ds):
        return ds
    if limit < 1:
        raise JaqmooError(f"dataset size limits must be >= 1 (got {limit})")
    idx = np.sort(np.random.default_rng(seed + 1).permutation(len(ds))[:limit])
    if isinstance(ds, TensorDataset):
        return TensorDataset(*(t[torch.as_tensor(idx)] for t in ds.tensors))
    return Subset(ds, idx.tolist())


def _tensor_splits(images: torch.Tensor, labels: torch.Tensor, test_images: torch.Tensor,
                   test_labels: torch.Tensor, val_fraction: float, seed: int) -> tuple[Dataset, Dataset, Dataset]:
    tr, va = _split_indices(len(images), val_fraction, seed)
    tr_t, va_t = torch.as_tensor(tr), torch.as_tensor(va)
    return (
        TensorDataset(images[tr_t], labels[tr_t]),
        TensorDataset(images[va_t], labels[va_t]),
        TensorDataset(test_images, test_labels),
    )


def _load_digits(seed: int, val_fraction: float) -> DatasetSplits:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = (x - 0.3) / 0.4
    y = torch.tensor(bunch.target, dtype=torch.int64)
    rest, test = _split_indices(len(x), 0.2, seed + 1000)
    rest_t, test_t = torch.as_tensor(rest), torch.as_tensor(test)
    train, val, test_ds = _tensor_splits(x[rest_t], y[rest_t], x[test_t], y[test_t], val_fraction, seed)
    return DatasetSplits("digits", train, val, test_ds, 10, 1, 8, "sklearn.datasets.load_digits")


def read_idx(path: Path) -> np.ndarray:
    """Read one (optionally gzip-compressed) idx file (the MNIST format) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise JaqmooError(f"{path}: cannot read idx file ({exc}); reinstall the dataset") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise JaqmooError(f"{path}: not an unsigned-byte idx file (bad magic number)")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise JaqmooError(f"{path}: idx file is truncated ({body.size} of {int(np.prod(dims))} values)")
    return body.reshape(dims)


def _fashion_from_dir(root: Path) -> tuple[np.ndarray, ...]:
    arrays = []
    for key in ("train_images", "train_labels", "test_images", "test_labels"):
        name = FASHION_MNIST_FILES[key]
        path = root / name
        if not path.is_file() and (root / name[:-3]).is_file():
            path = root / name[:-3]
        arrays.append(read_idx(path))
    return tuple(arrays)


def _fashion_missing(root: Path) -> list[str]:
    return [n for n in FASHION_MNIST_FILES.values() if not (root / n).is_file() and not (root / n[:-3]).is_file()]


def _load_fashion_mnist(root: str | Path | None, seed: int, val_fraction: float, download: bool) -> DatasetSplits:
    candidates = [Path(root)] if root is not None else [FASHION_MNIST_DIR]
    if root is not None:
        candidates += [Path(root) / "FashionMNIST" / "raw"]
    for cand in candidates:
        if cand.is_dir() and not _fashion_missing(cand):
            tr_x, tr_y, te_x, te_y = _fashion_from_dir(cand)
            source = str(cand)
            break
    else:
        if not download:
            where = candidates[0]
            missing = _fashion_missing(where) if where.is_dir() else list(FASHION_MNIST_FILES.values())
            raise JaqmooError(
                f"dataset 'fashion-mnist': files {missing} not found in {where}. Install them with "
                "`apt-get install dataset-fashion-mnist` (puts them in /usr/share/datasets/fashion-mnist), "
                "pass the folder that holds the idx files as --data-root, or allow a download "
                "with --download (needs internet)"
            )
        tr_x, tr_y, te_x, te_y = _download_fashion_mnist(root)
        source = "torchvision download"

    def norm(a: np.ndarray) -> torch.Tensor:
        return ((torch.from_numpy(a.copy()).float() / 255.0 - FASHION_MNIST_MEAN) / FASHION_MNIST_STD).unsqueeze(1)

    if tr_x.shape[1:] != (28, 28) or len(tr_x) != len(tr_y) or len(te_x) != len(te_y):
        raise JaqmooError(f"fashion-mnist in {source}: unexpected array shapes {tr_x.shape}, {te_x.shape}")
    train, val, test = _tensor_splits(norm(tr_x), torch.from_numpy(tr_y.astype(np.int64)),
                                      norm(te_x), torch.from_numpy(te_y.astype(np.int64)), val_fraction, seed)
    return DatasetSplits("fashion-mnist", train, val, test, 10, 1, 28, source)


def _download_fashion_mnist(root: str | Path | None) -> tuple[np.ndarray, ...]:
    """torchvision fallback for users with internet access."""
    import torchvision

    target = Path(root) if root is not None else Path.home() / ".cache" / "jaqmoo" / "data"
    try:
        tr = torchvision.datasets.FashionMNIST(str(target), train=True, download=True)
        te = torchvision.datasets.FashionMNIST(str(target), train=False, download=True)
    except Exception as exc:  # network errors come in many types
        raise JaqmooError(
            f"dataset 'fashion-mnist': download into {target} failed ({exc}); install "
            "`apt-get install dataset-fashion-mnist` or pass --data-root with the idx files"
        ) from exc
    return tr.data.numpy(), tr.targets.numpy(), te.data.numpy(), te.targets.numpy()


def _load_cifar10(root: str | Path | None, seed: int, val_fraction: float, download: bool) -> DatasetSplits:
    import torchvision

    target = Path(root) if root is not None else Path.home() / ".cache" / "jaqmoo" / "data"
    try:
        tr = torchvision.datasets.CIFAR10(str(target), train=True, download=download)
        te = torchvision.datasets.CIFAR10(str(target), train=False, download=download)
    except RuntimeError as exc:
        raise JaqmooError(
            f"dataset 'cifar10': not found in {target} ({exc}); pass --data-root with the folder "
            "holding 'cifar-10-batches-py', or --download to fetch it (needs internet)"
        ) from exc
    except Exception as exc:
        raise JaqmooError(f"dataset 'cifar10': download into {target} failed ({exc})") from exc
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)

    def norm(a: np.ndarray) -> torch.Tensor:
        return (torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255.0 - mean) / std

    train, val, test = _tensor_splits(norm(tr.data), torch.tensor(tr.targets), norm(te.data),
                                      torch.tensor(te.targets), val_fraction, seed)
    return DatasetSplits("cifar10", train, val, test, 10, 3, 32, str(target))


def _load_imagefolder(root: str | Path | None, seed: int, val_fraction: float, input_size: int) -> DatasetSplits:
    import torchvision
    from torchvision import transforms

    if root is None:
        raise JaqmooError("dataset 'imagefolder' needs --data-root: a folder with train/<class>/ and val/<class>/ images")
    root = Path(root)
    if not (root / "train").is_dir():
        raise JaqmooError(f"dataset 'imagefolder': {root / 'train'} does not exist; expected root/train/<class>/*.jpg")
    tf = transforms.Compose([
        transforms.Resize(int(input_size * 256 / 224)),
        transforms.CenterCrop(input_size),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])
    try:
        train_full = torchvision.datasets.ImageFolder(str(root / "train"), transform=tf)
        if (root / "val").is_dir():
            held_out = torchvision.datasets.ImageFolder(str(root / "val"), transform=tf)
        else:
            held_out = None
    except (FileNotFoundError, RuntimeError) as exc:
        raise JaqmooError(f"dataset 'imagefolder' in {root}: {exc}") from exc
    tr, va = _split_indices(len(train_full), val_fraction, seed)
    train, val = Subset(train_full, tr.tolist()), Subset(train_full, va.tolist())
    test = held_out
    if (root / "test").is_dir():
        test = torchvision.datasets.ImageFolder(str(root / "test"), transform=tf)
    if test is None:
        test = val
    return DatasetSplits("imagefolder", train, val, test, len(train_full.classes), 3, input_size, str(root))


def load_dataset(
    name: str,
    root: str | Path | None = None,
    seed: int = 0,
    val_fraction: float = 0.1,
    download: bool = False,
    input_size: int = 224,
    max_train: int | None = None,
    max_val: int | None = None,
    max_test: int | None = None,
) -> DatasetSplits:
    """Load dataset ``name`` with deterministic train / validation / test splits.

    Args:
        name: one of :data:`DATASETS`.
        root: where the data lies (defaults: the Debian package folder for Fashion-MNIST,
            ``~/.cache/jaqmoo/data`` for CIFAR-10; required for ``imagefolder``).
        seed: seeds the train/validation split and the ``max_*`` subsets.
        val_fraction: share of the training images held out for validation.
        download: let torchvision download Fashion-MNIST / CIFAR-10 when not found.
        input_size: image size for ``imagefolder`` (the others have a fixed size).
        max_train, max_val, max_test: keep a seeded random subset of at most this many.

    Raises:
        JaqmooError: unknown name or missing data (the message says how to get it).
    """
    key = name.lower().replace("_", "-")
    if key == "fashionmnist":
        key = "fashion-mnist"
    if key == "digits":
        splits = _load_digits(seed, val_fraction)
    elif key == "fashion-mnist":
        splits = _load_fashion_mnist(root, seed, val_fraction, download)
    elif key == "cifar10" or key == "cifar-10":
        splits = _load_cifar10(root, seed, val_fraction, download)
    elif key == "imagefolder":
        splits = _load_imagefolder(root, seed, val_fraction, input_size)
    else:
        raise JaqmooError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    splits.train = _limit(splits.train, max_train, seed)
    splits.val = _limit(splits.val, max_val, seed)
    splits.test = _limit(splits.test, max_test, seed)
    return splits


__all__ = ["DATASETS", "DatasetSplits", "load_dataset", "read_idx"]
