"""Fashion-MNIST-5k: the first 5,000 Fashion-MNIST training images, a harder drop-in for MNIST-5k.

Read from the IDX files (``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``) found
first in ``<cache root>/fashion-mnist/``, then where Debian's ``dataset-fashion-mnist``
package installs them (``/usr/share/datasets/fashion-mnist``); when neither has them, the
official files are downloaded into the cache (``download=True``, the default). Wherever they come
from, their uncompressed content is checked against the published checksum (``download.REMOTES``).
Same conventions as MNIST-5k: ``X`` (n, 784) standardised by one mean and std.
"""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import torch

from .._validation import check_int_range
from .base import Dataset, one_hot, standardize
from .download import REMOTES, ChecksumMismatch, DataUnavailable, data_root, fetch

DEBIAN_FOLDER = Path("/usr/share/datasets/fashion-mnist")
FILES = {"images": "fashion-mnist-images", "labels": "fashion-mnist-labels"}  # -> download.REMOTES keys
IMAGES, LABELS = "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot")


def read_idx(path: Path, expected_dims: int, checksum: str | None = None) -> np.ndarray:
    """An unsigned-byte IDX array (the MNIST file format), gzip-compressed; when ``checksum``
    (``"sha256:<hex>"``) is given, the uncompressed bytes must have it."""
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    if checksum is not None:
        algorithm, _, expected = checksum.partition(":")
        got = hashlib.new(algorithm, raw, usedforsecurity=False).hexdigest()
        if got != expected.lower():
            raise ChecksumMismatch(f"{path} is not the published Fashion-MNIST file (expected {checksum} of the "
                                   f"uncompressed content, got {algorithm}:{got}); delete it and fetch it again")
    magic = int.from_bytes(raw[:4], "big")
    if magic != 0x0800 + expected_dims or len(raw) < 4 + 4 * expected_dims:
        raise DataUnavailable(f"{path} is not a {expected_dims}-d unsigned-byte IDX file (magic {magic:#x})")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(expected_dims)]
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * expected_dims)
    if body.size != int(np.prod(dims)):
        raise DataUnavailable(f"{path} is truncated: header says {dims}, found {body.size} bytes of data")
    return body.reshape(dims)


def find_files(root=None, *, download: bool = False, mirror: str | None = None, progress: bool = False) -> Path:
    """The first folder holding both training files: the cache, Debian's folder, else (with
    ``download``) the cache after downloading them there."""
    candidates = [data_root(root) / "fashion-mnist", DEBIAN_FOLDER]
    for folder in candidates:
        if (folder / IMAGES).is_file() and (folder / LABELS).is_file():
            return folder
    if download:
        for key in FILES.values():
            fetch(REMOTES[key], candidates[0], mirror=mirror, progress=progress)
        return candidates[0]
    raise DataUnavailable(
        f"Fashion-MNIST files {IMAGES} and {LABELS} were not found in {' or '.join(map(str, candidates))}. "
        f"On Debian/Ubuntu: `apt-get install dataset-fashion-mnist`; elsewhere put the two files from "
        f"{REMOTES[FILES['images']].base_url} in {candidates[0]}, or call with download=True."
    )


def load_fashion_mnist_5k(*, root=None, n: int = 5000, download: bool = True, mirror: str | None = None,
                          progress: bool = True, **_ignored) -> Dataset:
    """The first ``n`` training images in file order (classes mixed, not balanced)."""
    n = check_int_range("n", n, 1)
    folder = find_files(root, download=download, mirror=mirror, progress=progress)
    images = read_idx(folder / IMAGES, 3, REMOTES[FILES["images"]].checksum)
    labels = read_idx(folder / LABELS, 1, REMOTES[FILES["labels"]].checksum)
    if len(images) != len(labels):
        raise DataUnavailable(f"{folder}: {len(images)} images but {len(labels)} labels")
    if n > len(images):
        raise ValueError(f"n must be at most the {len(images)} images in {folder}; got n={n}")
    X = standardize(torch.from_numpy(images[:n].reshape(n, -1).astype(np.float32) / 255.0))
    labels = torch.from_numpy(labels[:n].astype(np.int64))
    return Dataset(X, one_hot(labels, 10), labels, "fashion-mnist-5k",
                   source=f"Fashion-MNIST (Zalando) from {folder}, first {n} training images",
                   meta={"classes": CLASSES})
