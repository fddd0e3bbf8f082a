"""Where the kit keeps things on disk: one module, so a reader finds every location here.

- ``shipped_runs()``: the run store that ships with the kit (precomputed runs and switch-point
  checkpoints), read-only.
- ``user_store()``: the user's own run store, where new runs are written.
- ``data_cache()``: downloaded data sets.
"""
from __future__ import annotations

import os
from pathlib import Path

_REPO_DATA = Path(__file__).resolve().parents[1] / "data"


def shipped_runs() -> Path:
    """The shipped run store (``data/runs`` of a checkout)."""
    return _REPO_DATA / "runs"


def user_store() -> Path:
    """The user's run store: ``$SUBSPACE_KIT_RUNS`` if set, else ``runs`` in the current folder."""
    return Path(os.environ.get("SUBSPACE_KIT_RUNS", "runs"))


def data_cache() -> Path:
    """Downloaded data: ``$SUBSPACE_KIT_DATA`` if set, else ``data/cache`` of a checkout."""
    return Path(os.environ.get("SUBSPACE_KIT_DATA", _REPO_DATA / "cache"))
