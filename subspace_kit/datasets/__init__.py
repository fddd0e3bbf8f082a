"""Data sets by name: ``load("mnist-5k")`` returns a ``Dataset`` of ready-to-train tensors.

Each loader lives in its own module; ``LOADERS`` maps names to them. To use your own data,
build a ``Dataset(X, Y, labels, name)`` directly (``from_tensors`` does the one-hot step).
"""
from __future__ import annotations

import torch

from .._validation import check_choice
from .base import Dataset, one_hot, standardize
from .mnist import load_mnist_5k

LOADERS = {"mnist-5k": load_mnist_5k}


def load(name: str, **kwargs) -> Dataset:
    """Load a data set by name (see ``LOADERS``); keyword arguments go to its loader."""
    return LOADERS[check_choice("name", name, LOADERS)](**kwargs)


def from_tensors(X: torch.Tensor, labels: torch.Tensor, *, num_classes: int | None = None,
                 name: str = "custom") -> Dataset:
    """Wrap your own inputs and integer labels as a ``Dataset`` (one-hot targets added)."""
    labels = torch.as_tensor(labels).long()
    num_classes = num_classes or int(labels.max()) + 1
    return Dataset(torch.as_tensor(X).float(), one_hot(labels, num_classes), labels, name, source="user data")


__all__ = ["Dataset", "LOADERS", "load", "from_tensors", "one_hot", "standardize"]
