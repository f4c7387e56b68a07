"""Dataset loading: digits always, Fashion-MNIST from the Debian package, clear errors."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from jaqmoo.data import FASHION_MNIST_DIR, load_dataset, read_idx
from jaqmoo.errors import JaqmooError


def test_digits_splits_are_deterministic_and_disjoint():
    a = load_dataset("digits", seed=3)
    b = load_dataset("digits", seed=3)
    c = load_dataset("digits", seed=4)
    assert (a.num_classes, a.in_channels, a.input_size) == (10, 1, 8)
    assert torch.equal(a.train.tensors[0], b.train.tensors[0])
    assert not torch.equal(a.val.tensors[0], c.val.tensors[0])
    assert len(a.train) + len(a.val) + len(a.test) == 1797
    x, y = a.train[0]
    assert x.shape == (1, 8, 8) and y.dtype == torch.int64


def _write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_idx_reader(tmp_path):
    rng = np.random.default_rng(0)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 255, (50, 28, 28)))
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, 50))
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 255, (20, 28, 28)))
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, 20))
    s = load_dataset("fashion-mnist", root=tmp_path, max_train=10)
    assert (len(s.train), len(s.val), len(s.test)) == (10, 5, 20)
    assert s.input_shape == (1, 28, 28)
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"\x00\x00\x09\x01abcd"))
    with pytest.raises(JaqmooError, match="magic"):
        read_idx(tmp_path / "bad.gz")


@pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian_package():
    s = load_dataset("fashion-mnist", max_train=100, max_val=50, max_test=50)
    assert s.source == str(FASHION_MNIST_DIR)
    assert (len(s.train), len(s.val), len(s.test)) == (100, 50, 50)
    assert int(s.train.tensors[1].max()) <= 9


def test_missing_datasets_are_clear_errors(tmp_path):
    with pytest.raises(JaqmooError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist", root=tmp_path)
    with pytest.raises(JaqmooError, match="cifar10"):
        load_dataset("cifar10", root=tmp_path)
    with pytest.raises(JaqmooError, match="train"):
        load_dataset("imagefolder", root=tmp_path)
    with pytest.raises(JaqmooError, match="unknown dataset"):
        load_dataset("mnist-but-wrong")
