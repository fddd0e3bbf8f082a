"""CIFAR10-5k: the first 5,000 training images of CIFAR-10 (the paper's CNN experiment).

Read from the official python-version archive ``cifar-10-python.tar.gz``, downloaded on first
use into ``<cache root>/cifar10/`` and checked against its published md5 (see ``download``).
Offline, put the archive at ``<cache root>/cifar10/cifar-10-python.tar.gz`` yourself.
"""
from __future__ import annotations

import pickle

import numpy as np
import torch

from .._validation import check_int_range
from .base import Dataset, one_hot
from .download import DataUnavailable, data_root, fetch_and_extract

FOLDER = "cifar-10-batches-py"
IMAGES_PER_BATCH = 10_000
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class _BatchUnpickler(pickle.Unpickler):
    """Only what a CIFAR batch (a dict of numpy arrays, lists and strings) needs."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a CIFAR batch file")
        return super().find_class(module, name)


def read_batch(path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(m, 3, 32, 32)`` uint8 and labels ``(m,)`` int64 from one ``data_batch_*`` file."""
    with open(path, "rb") as fh:
        batch = _BatchUnpickler(fh, encoding="bytes").load()
    images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if len(images) != len(labels):
        raise DataUnavailable(f"{path}: {len(images)} images but {len(labels)} labels; the cache is damaged")
    return images, labels


def normalize_per_channel(X: torch.Tensor) -> torch.Tensor:
    """Centre and scale each channel of ``(n, C, H, W)`` by its own mean and std over the set."""
    mean = X.mean(dim=(0, 2, 3), keepdim=True)
    std = X.std(dim=(0, 2, 3), keepdim=True)
    return (X - mean) / std


def load_cifar10_5k(*, root=None, download: bool = True, mirror: str | None = None, n: int = 5000,
                    progress: bool = True) -> Dataset:
    """The first ``n`` CIFAR-10 training images, in the order of ``data_batch_1, 2, ...``.

    ``X`` (n, 3, 32, 32) float32, each channel standardised by the subset's own mean and std;
    ``Y`` one-hot (n, 10); ``labels`` (n,). Raises ``DataUnavailable`` when the archive can be
    neither found nor downloaded (the message says where to put it).
    """
    n = check_int_range("n", n, 1, 5 * IMAGES_PER_BATCH + 1)
    folder = fetch_and_extract("cifar10", data_root(root) / "cifar10", FOLDER, download=download,
                               mirror=mirror, progress=progress)
    images, labels, batch = [], [], 1
    while sum(len(x) for x in images) < n:
        path = folder / f"data_batch_{batch}"
        if not path.exists():
            have = sum(len(x) for x in images)
            raise ValueError(f"n must be at most the {have} training images in {folder}; got n={n}")
        x, y = read_batch(path)
        images.append(x)
        labels.append(y)
        batch += 1
    X = torch.from_numpy(np.concatenate(images)[:n]).float() / 255.0
    labels = torch.from_numpy(np.concatenate(labels)[:n])
    return Dataset(normalize_per_channel(X), one_hot(labels, 10), labels, "cifar10-5k",
                   source=f"CIFAR-10 (official python archive), first {n} training images",
                   meta={"classes": CLASSES})
