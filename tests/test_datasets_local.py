"""Data sets read from local files (Fashion-MNIST) and the user's own data."""
from __future__ import annotations

import gzip
import hashlib
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from subspace_kit.datasets import (ChecksumMismatch, DataUnavailable, LOADERS, download, fashion_mnist, from_tensors,
                                   from_torch_dataset, load)


def write_idx(path, array: np.ndarray) -> bytes:
    """``array`` (uint8) as a gzip IDX file, the MNIST format; returns the uncompressed bytes."""
    header = (0x0800 + array.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    with gzip.open(path, "wb") as fh:
        fh.write(raw)
    return raw


def publish(monkeypatch, key: str, raw: bytes) -> None:
    """Make ``raw`` the published uncompressed content of ``REMOTES[key]`` during this test only."""
    remote = download.REMOTES[key]
    monkeypatch.setitem(download.REMOTES, key, replace(remote, checksum="sha256:" + hashlib.sha256(raw).hexdigest(),
                                                       content_size=len(raw)))


@pytest.fixture
def fashion_root(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_FOLDER", tmp_path / "not-installed")
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (12, 28, 28)), rng.integers(0, 10, 12)
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    publish(monkeypatch, fashion_mnist.FILES["images"], write_idx(folder / fashion_mnist.IMAGES, images))
    publish(monkeypatch, fashion_mnist.FILES["labels"], write_idx(folder / fashion_mnist.LABELS, labels))
    return tmp_path, images, labels


def test_fashion_mnist_reads_idx_files_like_mnist_5k(fashion_root):
    root, images, labels = fashion_root
    data = load("fashion-mnist-5k", root=root, n=10)
    assert data.X.shape == (10, 784) and data.X.dtype == torch.float32
    assert data.labels.tolist() == labels[:10].tolist()
    flat = torch.as_tensor(images[:10].reshape(10, -1), dtype=torch.float32) / 255
    assert torch.allclose(data.X, (flat - flat.mean()) / flat.std(), atol=1e-5)
    with pytest.raises(ValueError, match="n must be at most the 12"):
        load("fashion-mnist-5k", root=root, n=13)


def test_fashion_mnist_rejects_a_file_that_is_not_the_published_one(fashion_root):
    root = fashion_root[0]
    path = root / "fashion-mnist" / fashion_mnist.IMAGES
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-1] + bytes([raw[-1] ^ 1])))  # one pixel differs
    with pytest.raises(ChecksumMismatch, match=f"{path}.*not the published Fashion-MNIST file"):
        load("fashion-mnist-5k", root=root, n=10)


def test_fashion_mnist_rejects_a_truncated_or_wrong_file(fashion_root, monkeypatch):
    root = fashion_root[0]
    path = root / "fashion-mnist" / fashion_mnist.IMAGES
    raw = gzip.decompress(path.read_bytes())
    for bad, message in ((raw[:-5], "truncated"), (b"\0\0\x08\x01" + raw[4:], "not a 3-d")):
        path.write_bytes(gzip.compress(bad))
        publish(monkeypatch, fashion_mnist.FILES["images"], bad)  # past the checksum: the IDX checks
        with pytest.raises(DataUnavailable, match=message):
            load("fashion-mnist-5k", root=root, n=10)


def test_missing_fashion_mnist_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_FOLDER", tmp_path / "not-installed")
    with pytest.raises(DataUnavailable, match="apt-get install dataset-fashion-mnist") as err:
        load("fashion-mnist-5k", root=tmp_path, download=False)
    assert str(tmp_path / "fashion-mnist") in str(err.value)


@pytest.mark.skipif(not (fashion_mnist.DEBIAN_FOLDER / fashion_mnist.IMAGES).exists(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_5k(tmp_path):
    data = load("fashion-mnist-5k", root=tmp_path)
    assert data.X.shape == (5000, 784) and data.labels.bincount().numel() == 10
    assert abs(float(data.X.mean())) < 1e-4 and abs(float(data.X.std()) - 1) < 1e-4


# ------------------------------------------------------------------------------ user data
def test_from_tensors_accepts_labels_or_targets():
    X = torch.randn(6, 3)
    by_label = from_tensors(X, torch.tensor([0, 2, 1, 0, 2, 1]), num_classes=4)
    assert by_label.Y.shape == (6, 4) and by_label.Y.argmax(1).tolist() == [0, 2, 1, 0, 2, 1]
    targets = torch.eye(3)[[2, 0, 1, 1, 0, 2]]
    by_target = from_tensors(X, targets)
    assert torch.equal(by_target.Y, targets) and by_target.labels.tolist() == [2, 0, 1, 1, 0, 2]
    assert by_label.source == "user data"


def test_from_tensors_keeps_token_ids_as_integers_and_casts_images():
    ids = from_tensors(torch.tensor([[3, 4, 0], [5, 0, 0]], dtype=torch.int32), [0, 1], meta={"vocab_size": 6})
    assert ids.X.dtype == torch.int64 and ids.meta == {"vocab_size": 6}
    pixels = from_tensors(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), [0, 1])
    assert pixels.X.dtype == torch.float32


@pytest.mark.parametrize("labels, message", [([0, -1], "labels must be >= 0"),
                                             ([0.5, 1.0], "labels must be integer classes"),
                                             ([[[1]], [[0]]], "labels must be integer classes")])
def test_from_tensors_rejects_bad_labels(labels, message):
    with pytest.raises(ValueError, match=message):
        from_tensors(torch.zeros(2, 3), torch.tensor(labels))


def test_from_torch_dataset_stacks_the_first_n_items():
    X, y = torch.randn(10, 2, 5), torch.arange(10) % 3
    data = from_torch_dataset(TensorDataset(X, y), n=7, name="mine")
    assert torch.equal(data.X, X[:7]) and data.labels.tolist() == y[:7].tolist() and data.name == "mine"
    with pytest.raises(ValueError, match="n must be in"):
        from_torch_dataset(TensorDataset(X, y), n=11)


def test_meta_and_extra_follow_subset_and_to():
    data = from_tensors(torch.tensor([[1, 2], [3, 0], [4, 0]]), [0, 1, 1], meta={"vocab_size": 5},
                        extra={"mask": torch.tensor([[True, True], [True, False], [True, False]])})
    small = data.subset(2).to(dtype=torch.float64)
    assert small.meta == {"vocab_size": 5} and small.extra["mask"].shape == (2, 2)
    assert small.X.dtype == torch.int64 and small.Y.dtype == torch.float64  # ids are never cast


def test_load_names_every_loader_and_rejects_unknown_names():
    assert set(LOADERS) == {"mnist-5k", "fashion-mnist-5k", "cifar10-5k", "sst2-1k"}
    with pytest.raises(ValueError, match="name must be one of"):
        load("imagenet")
