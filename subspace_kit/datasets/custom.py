"""Your own data as a ``Dataset``: from tensors, or from any ``torch.utils.data.Dataset``.

    data = from_tensors(X, labels)                  # integer class labels (n,)
    data = from_tensors(X, Y)                       # or targets (n, C): one-hot or soft
    data = from_torch_dataset(torchvision_set, n=2000)

Inputs: floating and ``uint8`` inputs become float32 (``uint8`` images are *not* rescaled:
normalise them yourself, e.g. with ``standardize``); other integer inputs are kept as int64
token ids (pass ``meta={"vocab_size": V, "pad_id": 0}`` for the Transformer).
"""
from __future__ import annotations

import torch

from .._validation import check_int_range
from .base import Dataset, one_hot


def _inputs(X) -> torch.Tensor:
    X = torch.as_tensor(X)
    if X.is_floating_point() or X.dtype in (torch.uint8, torch.bool):
        return X.float()
    if X.is_complex():
        raise ValueError(f"X must be real or integer, got dtype {X.dtype}")
    return X.long()


def from_tensors(X, labels, *, num_classes: int | None = None, name: str = "custom",
                 extra: dict | None = None, meta: dict | None = None) -> Dataset:
    """Wrap inputs ``X`` (n, ...) and ``labels`` as a ``Dataset``.

    ``labels`` is either integer classes (n,) -- one-hot targets are built, with ``num_classes``
    columns (default: largest label + 1) -- or float targets ``Y`` (n, C) used as given, with
    ``labels`` their argmax.
    """
    X, labels = _inputs(X), torch.as_tensor(labels)
    if labels.ndim == 2 and labels.is_floating_point():
        Y = labels.float()
        return Dataset(X, Y, Y.argmax(dim=1), name, source="user data", extra=dict(extra or {}), meta=dict(meta or {}))
    if labels.ndim != 1 or labels.is_floating_point() and not torch.equal(labels, labels.round()):
        raise ValueError(f"labels must be integer classes (n,) or float targets (n, C); got dtype {labels.dtype}, "
                         f"shape {tuple(labels.shape)}")
    labels = labels.long()
    if len(labels) and int(labels.min()) < 0:
        raise ValueError(f"labels must be >= 0; got {int(labels.min())}")
    top = int(labels.max()) + 1 if len(labels) else 1
    num_classes = top if num_classes is None else check_int_range("num_classes", num_classes, top)
    return Dataset(X, one_hot(labels, num_classes), labels, name, source="user data",
                   extra=dict(extra or {}), meta=dict(meta or {}))


def from_torch_dataset(dataset, *, n: int | None = None, num_classes: int | None = None,
                       name: str = "custom") -> Dataset:
    """The first ``n`` items (all by default) of a map-style ``torch.utils.data.Dataset``.

    Each item must be ``(x, y)`` with ``x`` a tensor (or array) and ``y`` an integer class;
    the whole set is stacked in memory, as the full-data Hessian needs it.
    """
    total = len(dataset)
    n = total if n is None else check_int_range("n", n, 1, total + 1)
    xs, ys = [], []
    for i in range(n):
        item = dataset[i]
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ValueError(f"dataset items must be (x, y) pairs; item {i} is {type(item).__name__}")
        xs.append(torch.as_tensor(item[0]))
        ys.append(int(item[1]))
    return from_tensors(torch.stack(xs), torch.tensor(ys), num_classes=num_classes, name=name)
