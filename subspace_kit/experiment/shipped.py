"""The runs that ship with the kit, by name: read back at once, or computed when missing.

The list is data stored with the runs: ``index.json`` of the shipped store
(``paths.shipped_runs()``) maps each name to its full config, its folder key, the notebooks that
use it and what it shows (``scripts/make_cached_runs.py`` makes the runs from this very file).
``load_shipped(name)`` reads the run from ``store`` or the shipped store, or computes it with the
engine into ``store`` (default ``paths.user_store()``); ``smoke=True`` shrinks it to seconds
(``smoke_config``) for CI.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Iterable

from ..paths import shipped_runs, user_store
from .config import RunConfig
from .results import RunResult
from .run_files import FINISHED
from .runner import run
from .store import RunStore

INDEX = "index.json"


def index(root=None) -> dict:
    """The parsed ``index.json`` of the store ``root`` (default: the shipped store).
    ``ValueError`` naming the file when it is missing or damaged."""
    path = Path(root if root is not None else shipped_runs()) / INDEX
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: the index of shipped runs cannot be read ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("runs"), dict):
        raise ValueError(f"{path}: the index of shipped runs must hold a 'runs' mapping")
    return data


def names() -> list[str]:
    """The names of the shipped runs, in index order."""
    return list(index()["runs"])


def smoke_config(cfg: RunConfig | str) -> RunConfig:
    """A seconds-long version of ``cfg`` (or of the shipped run of that name): same optimizer,
    loss, modes and step size, on 300 samples with a subspace of at most 3 dimensions and 30 steps
    (switch at 20, or none if ``cfg`` has none); the subspace is computed only a few times."""
    cfg = shipped_config(cfg) if isinstance(cfg, str) else cfg
    no_switch = cfg.switch == "step" and cfg.switch_step >= cfg.steps  # phase 1 only: keep it so
    return cfg.replace(n_train=300, hessian_samples=100, k=min(cfg.k, 3), steps=30, switch="step",
                       switch_step=30 if no_switch else 20, switch_check_every=20, refresh_every=10,
                       log_every=5, checkpoint_every=20, max_switch_step=None)


def shipped_config(name: str, *, smoke: bool = False) -> RunConfig:
    """The config of the shipped run ``name`` (with ``smoke``: its ``smoke_config``)."""
    runs = index()["runs"]
    if name not in runs:
        raise ValueError(f"name must be one of {', '.join(map(repr, runs))}; got {name!r}")
    cfg = RunConfig.from_dict(runs[name]["config"])
    return smoke_config(cfg) if smoke else cfg


def find(cfg: RunConfig, stores: Iterable) -> RunResult | None:
    """The first finished run of ``cfg`` (completed, or ended by a divergence) in ``stores``
    (folders or ``RunStore``s; ``None`` entries are skipped)."""
    for store in stores:
        if store is None:
            continue
        result = (store if isinstance(store, RunStore) else RunStore(store)).load(cfg)
        if result is not None and result.status in FINISHED:
            return result
    return None


def stored_shipped(name: str) -> RunResult | None:
    """The shipped run ``name`` exactly as it is stored, whatever its status (a run that was
    stopped stays stopped), or ``None`` when this copy lacks it. Never computes anything."""
    return RunStore(shipped_runs()).load(shipped_config(name))


def load_shipped(name: str, *, smoke: bool = False, store=None, progress: bool = False) -> RunResult:
    """The shipped run ``name`` (with ``smoke``: its ``smoke_config``).

    Read from ``store`` or the shipped store when there; otherwise computed with the engine into
    ``store`` (default ``paths.user_store()``; a temporary folder for smoke runs)."""
    cfg = shipped_config(name, smoke=smoke)
    found = find(cfg, [store, None if smoke else shipped_runs()])
    if found is not None:
        return found
    if store is None:
        store = tempfile.mkdtemp(prefix="subspace_kit_smoke_") if smoke else user_store()
    return run(cfg, store=store, progress=progress)


def compute_shipped(name: str, store=None) -> tuple[RunResult, float]:
    """Run the shipped run ``name`` into ``store`` (the shipped one by default); returns the
    result and the wall seconds. A finished run in ``store`` is returned as it is (~0 s)."""
    start = time.perf_counter()
    result = run(shipped_config(name), store=store if store is not None else shipped_runs())
    return result, time.perf_counter() - start
