"""Fetch the downloadable data ahead of time, verified, into the cache: ``python -m subspace_kit.datasets.prefetch``.

For set-ups that build an environment once and use it later or offline (``make``, Binder's
``postBuild``): notebook 13 then finds Fashion-MNIST and the SST-2 substitute at once.

- ``fashion-mnist``: the two training files, unless Debian's ``dataset-fashion-mnist`` already
  has them (both are checked against the published checksum).
- ``sst2-substitute``: the vaderSentiment 3.3.2 sdist from PyPI's file host.
- ``cifar10`` (163 MB) and ``sst2-glue``: only when named.

Exit status 0 when every asked-for item is in the cache (or Debian's folder), 1 otherwise, with one
line per item saying where it is or why it is not.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import fashion_mnist
from .download import REMOTES, DataUnavailable, data_root, fetch, fetch_and_extract

DEFAULT = ("fashion-mnist", "sst2-substitute")
ITEMS = DEFAULT + ("cifar10", "sst2-glue")


def prefetch_item(name: str, root=None, *, mirror: str | None = None, progress: bool = False) -> Path:
    """Make item ``name`` (one of ``ITEMS``) available and verified; returns where it is."""
    cache = data_root(root)
    if name == "fashion-mnist":
        folder = fashion_mnist.find_files(root, download=True, mirror=mirror, progress=progress)
        for key, dims in (("images", 3), ("labels", 1)):
            fashion_mnist.read_idx(folder / REMOTES[fashion_mnist.FILES[key]].filename, dims,
                                   REMOTES[fashion_mnist.FILES[key]].checksum)
        return folder
    if name == "sst2-substitute":
        return fetch(REMOTES["vader-sdist"], cache / "sst2", mirror=mirror, progress=progress)
    if name == "cifar10":
        return fetch_and_extract("cifar10", cache / "cifar10", "cifar-10-batches-py", mirror=mirror, progress=progress)
    if name == "sst2-glue":
        return fetch_and_extract("sst2", cache / "sst2", "SST-2", mirror=mirror, progress=progress)
    raise ValueError(f"name must be one of {', '.join(map(repr, ITEMS))}; got {name!r}")


def prefetch(names=DEFAULT, root=None, *, mirror: str | None = None, progress: bool = False) -> dict:
    """``{name: Path or DataUnavailable}`` for each of ``names``; never raises for a missing file."""
    outcome = {}
    for name in names:
        try:
            outcome[name] = prefetch_item(name, root, mirror=mirror, progress=progress)
        except DataUnavailable as exc:
            outcome[name] = exc
    return outcome


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m subspace_kit.datasets.prefetch", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"what to fetch, any of {', '.join(ITEMS)} (default: {' '.join(DEFAULT)})")
    parser.add_argument("--root", help="cache root (default: $SUBSPACE_KIT_DATA, else the kit's per-user data folder)")
    parser.add_argument("--mirror", help="base URL serving the same file names (default: the official addresses)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in ITEMS]
    if unknown:
        parser.error(f"NAME must be one of {', '.join(ITEMS)}; got {', '.join(unknown)}")
    args.names = args.names or list(DEFAULT)
    outcome = prefetch(args.names, args.root, mirror=args.mirror, progress=sys.stderr.isatty())
    for name, where in outcome.items():
        ok = not isinstance(where, Exception)
        print(f"{name}: {'ready at ' + str(where) if ok else 'NOT available: ' + str(where)}")
    return 0 if all(not isinstance(w, Exception) for w in outcome.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
