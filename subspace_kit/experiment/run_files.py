"""Every file the engine reads or writes for one run, through the run store, in one place.

``RunFiles(store, cfg)`` is the engine's whole view of the disk: the finished run (if any), the
metrics writer, the checkpoint, the summary, the rows so far, and the switch points of phase 1
(``<store>/switch_points/``, also looked up in the shipped runs, ``paths.shipped_runs()``).
Store features (a lock per run folder, integrity checks) are wired in here.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

from ..paths import shipped_runs, user_store
from .checkpoint import CheckpointError
from .config import RunConfig
from .metrics import columns
from .results import RunResult
from .store import MetricsWriter, RunStore, load_checkpoint, read_metrics, save_checkpoint, write_json
from .storefiles import DamagedRun
from .switch_point import SwitchPoint, switch_point_path

FINISHED = ("completed", "diverged")  # statuses a store answers without running again
CHECKPOINT = "checkpoint.npz"


def as_store(store) -> RunStore:
    """A ``RunStore`` from a store, a folder, or ``None`` (the user's store)."""
    if isinstance(store, RunStore):
        return store
    return RunStore(user_store() if store is None else store)


def read_npz(path: Path) -> dict | None:
    """The arrays of an npz (no pickle), ``None`` if absent, ``CheckpointError`` if unreadable."""
    try:
        return load_checkpoint(path)
    except DamagedRun as exc:  # the store's message names the file and what is wrong
        raise CheckpointError(f"{exc}, or run again with resume=False") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc}); delete it, "
                              "or run again with resume=False") from None


class RunFiles:
    """The files of run ``cfg`` in ``store``: ``finished`` / ``result`` (read back),
    ``lock``, ``load_checkpoint``, ``open`` (config + metrics writer), ``write_row``, ``save_checkpoint`` /
    ``drop_checkpoint``, ``write_summary``, ``rows``, ``find_switch_point`` /
    ``save_switch_point``, ``close``."""

    def __init__(self, store: RunStore, cfg: RunConfig):
        self.store, self.cfg = store, cfg
        self.path = store.path(cfg)
        self.writer: MetricsWriter | None = None

    def lock(self):
        """Held while this process writes the run: the store's per-folder OS lock (a second
        process for the same config waits here, then reads the finished run)."""
        return self.store.lock(self.cfg)

    def result(self) -> RunResult | None:
        return self.store.load(self.cfg)

    def finished(self) -> RunResult | None:
        """The stored run if it is finished (running it again would give the same numbers)."""
        result = self.result()
        return result if result is not None and result.status in FINISHED else None

    def load_checkpoint(self) -> tuple[dict, Path] | None:
        """``(arrays, path)`` of the run's checkpoint, or ``None`` when there is none."""
        path = self.path / CHECKPOINT
        arrays = read_npz(path) if (self.path / "config.json").exists() else None
        return None if arrays is None else (arrays, path)

    def open(self, *, keep_until: tuple | None) -> None:
        """Write ``config.json`` and open ``metrics.csv``: keep the rows up to ``keep_until``
        (``(phase, step)``, a resume) or start it empty (and drop a stale checkpoint)."""
        if keep_until is None:
            self.drop_checkpoint()
        write_json(self.path / "config.json", self.cfg.to_dict())
        self.writer = MetricsWriter(self.path / "metrics.csv", columns(self.cfg), keep_until=keep_until)

    def write_row(self, row: dict) -> dict:
        self.writer.write(row)
        return row

    def rows(self) -> list[dict]:
        """Every row on disk so far (the writer flushes each row)."""
        return read_metrics(self.path / "metrics.csv")

    def save_checkpoint(self, arrays: dict) -> None:
        save_checkpoint(self.path / CHECKPOINT, arrays)

    def drop_checkpoint(self) -> None:
        (self.path / CHECKPOINT).unlink(missing_ok=True)

    def write_summary(self, summary: dict) -> None:
        """``summary.json`` sealed with the row count and checksum of ``metrics.csv`` as it is now."""
        if self.writer is not None:
            self.writer.flush()
        self.store.open_run(self.cfg).write_summary(summary)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    # ------------------------------------------------------------------ switch points
    def switch_point_roots(self) -> list[Path]:
        roots = [self.store.root]
        if Path(shipped_runs()).resolve() != Path(self.store.root).resolve():
            roots.append(Path(shipped_runs()))
        return roots

    def find_switch_point(self, threads: int, problem) -> SwitchPoint | None:
        """The stored switch point of this config's phase 1 (this store first, then the shipped
        runs), validated; ``None`` when there is none."""
        num_params = sum(p.numel() for p in problem.template.parameters() if p.requires_grad)
        for root in self.switch_point_roots():
            path = switch_point_path(root, self.cfg, threads)
            arrays = read_npz(path)
            if arrays is not None:
                return SwitchPoint.from_arrays(arrays, path, self.cfg, num_params)
        return None

    def save_switch_point(self, point: SwitchPoint) -> None:
        path = switch_point_path(self.store.root, self.cfg, point.threads)
        if not path.exists():
            save_checkpoint(path, point.to_arrays(self.cfg))
