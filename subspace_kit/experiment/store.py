"""The run store: one folder per run, named by the hash of its full config.

``<root>/<config key>/``
- ``config.json``  the full config (enough to rebuild the run);
- ``metrics.csv``  one row per logged step, appended and flushed as the run goes;
- ``summary.json`` status (``running``, ``completed``, ``stopped``, ``diverged``), switch step,
  final losses, wall seconds, HVPs — rewritten atomically;
- ``checkpoint.npz`` parameters, optimizer states, tracker bases and RNG states for resuming
  (NumPy arrays, loaded with ``allow_pickle=False``: safe to receive from someone else).

A killed process leaves a readable partial run: every file is either complete or replaced
atomically, and ``metrics.csv`` rows after the last checkpoint are dropped on resume.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from .config import RunConfig
from .results import RunResult

DEFAULT_ROOT = "runs"


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: Path, data: dict) -> None:
    _atomic_write(Path(path), lambda fh: fh.write(json.dumps(data, indent=2, sort_keys=True).encode()))


def _parse(value: str):
    if value == "":
        return math.nan
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        return value


class RunStore:
    """Folder of runs keyed by config hash. ``RunStore(root).load(cfg)`` returns a
    ``RunResult`` (any status) or ``None``."""

    def __init__(self, root=DEFAULT_ROOT):
        self.root = Path(root)

    def path(self, cfg: RunConfig) -> Path:
        return self.root / cfg.key()

    def load(self, cfg: RunConfig) -> RunResult | None:
        return self.load_path(self.path(cfg))

    @staticmethod
    def load_path(path) -> RunResult | None:
        path = Path(path)
        if not (path / "config.json").exists():
            return None
        config = RunConfig.from_json(path / "config.json")
        summary = json.loads((path / "summary.json").read_text()) if (path / "summary.json").exists() else {}
        return RunResult(config, read_metrics(path / "metrics.csv"), summary, path)

    def runs(self) -> list[RunResult]:
        """Every run in the store that this version can read (a config naming, say, a data set
        that is not installed here is skipped), oldest first."""
        out = []
        for p in sorted(self.root.glob("*/config.json"), key=os.path.getmtime):
            try:
                result = self.load_path(p.parent)
            except ValueError:
                continue
            if result is not None:
                out.append(result)
        return out


def read_metrics(path: Path) -> list[dict]:
    if not Path(path).exists():
        return []
    with open(path, newline="") as fh:
        # A row cut short by a killed process has missing cells (None): skip it.
        return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(fh)
                if None not in row.values() and None not in row]


class MetricsWriter:
    """Appends rows to ``metrics.csv``, flushing each so a killed process loses nothing logged."""

    def __init__(self, path: Path, columns: list[str], *, keep_until: tuple | None = None):
        self.path, self.columns = Path(path), columns
        kept = []
        if keep_until is not None and self.path.exists():
            # Resume: drop the rows logged after the checkpoint (they will be logged again).
            kept = [r for r in read_metrics(self.path) if _order(r) <= keep_until]

        def write_kept(fh):
            text = io.StringIO(newline="")
            writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            for row in kept:
                writer.writerow(self._cells(row))
            fh.write(text.getvalue().encode())

        # Replace the file atomically (a kill now must not lose the rows kept), then append.
        _atomic_write(self.path, write_kept)
        self._fh = open(self.path, "a", newline="")
        self._writer = csv.DictWriter(self._fh, fieldnames=columns, extrasaction="ignore")

    def _cells(self, row: dict) -> dict:
        return {c: "" if _isnan(row.get(c)) else row.get(c, "") for c in self.columns}

    def write(self, row: dict) -> None:
        self._writer.writerow(self._cells(row))
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def _isnan(x) -> bool:
    return isinstance(x, float) and math.isnan(x)


def _order(row: dict) -> tuple:
    return (0 if row["phase"] == "warmup" else 1, row["step"])


def save_checkpoint(path: Path, arrays: dict[str, torch.Tensor | np.ndarray | int | float]) -> None:
    """Flat dict of tensors/numbers -> ``checkpoint.npz`` (atomic, no pickle)."""
    np_arrays = {k: (v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v))
                 for k, v in arrays.items()}
    _atomic_write(Path(path), lambda fh: np.savez(fh, **np_arrays))


def load_checkpoint(path: Path) -> dict[str, np.ndarray] | None:
    path = Path(path)
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
