"""The ``Dataset`` value every loader returns."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class Dataset:
    """Tensors ready for training.

    ``X`` inputs (n, ...) float, normalised; ``Y`` one-hot targets (n, C) float;
    ``labels`` (n,) int64; ``name``; ``source`` says where the data came from (a substitute is
    named there); ``extra`` holds loader-specific per-sample tensors (e.g. attention masks),
    sliced and moved with the data; ``meta`` holds plain values about the whole set (a text
    set's ``vocab``, ``vocab_size``, ``pad_id``; class names), carried along unchanged.

    Text sets keep ``X`` as int64 token ids (``meta["pad_id"]`` marks padding): never cast them.
    """

    X: torch.Tensor
    Y: torch.Tensor
    labels: torch.Tensor
    name: str
    source: str = ""
    extra: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if not (len(self.X) == len(self.Y) == len(self.labels)):
            raise ValueError(
                f"X, Y and labels must have the same length; got {len(self.X)}, {len(self.Y)}, {len(self.labels)}"
            )

    def __iter__(self):  # X, Y, labels = load(...)
        return iter((self.X, self.Y, self.labels))

    def __len__(self) -> int:
        return len(self.X)

    @property
    def num_classes(self) -> int:
        return self.Y.shape[1]

    @property
    def input_shape(self) -> tuple:
        return tuple(self.X.shape[1:])

    def to(self, device=None, dtype=None) -> "Dataset":
        """Copy onto ``device``; floating tensors also cast to ``dtype``."""
        def move(t):
            return t.to(device, dtype) if (dtype is not None and t.is_floating_point()) else t.to(device)
        return Dataset(move(self.X), move(self.Y), self.labels.to(device), self.name, self.source,
                       {k: move(v) for k, v in self.extra.items()}, self.meta)

    def subset(self, n: int) -> "Dataset":
        """The first ``n`` samples."""
        return Dataset(self.X[:n], self.Y[:n], self.labels[:n], self.name, self.source,
                       {k: v[:n] for k, v in self.extra.items()}, self.meta)


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels.long(), num_classes).float()


def standardize(X: torch.Tensor) -> torch.Tensor:
    """Centre and scale by the data set's own mean and standard deviation (one number each)."""
    return (X - X.mean()) / X.std()
