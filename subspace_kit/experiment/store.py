"""The run store: one folder per run, named by the hash of its full config.

``<root>/<config key>/``
- ``config.json``  the full config (enough to rebuild the run); it must hash to the folder name;
- ``metrics.csv``  one row per logged step, appended and flushed as the run goes;
- ``summary.json`` status (``running``, ``completed``, ``stopped``, ``diverged``, ``failed``),
  switch step, final losses, wall seconds, HVPs, and ``rows`` + ``metrics_sha256`` of
  ``metrics.csv`` when it was written — rewritten atomically;
- ``checkpoint.npz`` parameters, optimizer states, tracker bases and RNG states for resuming
  (NumPy arrays, loaded with ``allow_pickle=False`` and every field checked: safe to receive
  from someone else);
- ``.lock`` only while a writer holds the run (see ``RunStore.lock``).

What the store promises, and the tests that check each promise: ``docs/RELIABILITY.md``.
In short: one writer per run folder; nothing outside the store is ever read, written or
deleted (links are refused, not followed); a run whose files disagree is reported
``damaged`` with the file named, never served; a killed process leaves a readable partial
run whose half-written last row is dropped.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from ..paths import user_store
from .config import RunConfig
from .integrity import (FINAL_STATUSES, check_plain_arrays, looks_like_key, metrics_problems, parse_config,
                        parse_metrics, parse_summary, sha256)
from .results import RunResult
from .storefiles import (DamagedRun, RunInProgress, StoreError, UnsafePath, atomic_write, clean_temporaries,
                         folder_fd, hold_lock, links_in, mtime, open_append, read_file, remove)

__all__ = ["RunStore", "RunFolder", "StoreEntry", "RunResult", "MetricsWriter", "read_metrics", "write_json",
           "save_checkpoint", "load_checkpoint", "StoreError", "DamagedRun", "UnsafePath", "RunInProgress"]

CONFIG, METRICS, SUMMARY, CHECKPOINT = "config.json", "metrics.csv", "summary.json", "checkpoint.npz"
FINISHED = ("completed", "diverged")  # a store answers these without running again


# ---------------------------------------------------------------------------- single files
def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON to the store file ``path``, atomically, without following links."""
    atomic_write(Path(path), lambda fh: fh.write(json.dumps(data, indent=2, sort_keys=True).encode()))


def read_metrics(path: Path) -> list[dict]:
    """The complete rows of ``metrics.csv`` at ``path`` (``[]`` when missing). A last line
    without its newline (a writer killed mid-row) and malformed lines are left out; use
    ``RunStore.load`` to learn whether a finished run's file is intact."""
    data = read_file(Path(path))
    return [] if data is None else parse_metrics(data, Path(path)).rows


class MetricsWriter:
    """Appends rows to ``metrics.csv``, flushing each so a killed process loses nothing logged.

    ``keep_until``: resume — keep the rows whose ``(phase order, step)`` is at most this (the
    ones before the checkpoint; a half-written last line is always dropped), else start empty.
    """

    def __init__(self, path: Path, columns: list[str], *, keep_until: tuple | None = None):
        self.path, self.columns = Path(path), columns
        kept = []
        if keep_until is not None:
            kept = [r for r in read_metrics(self.path) if _order(r) <= keep_until]

        def write_kept(fh):
            text = io.StringIO(newline="")
            writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            for row in kept:
                writer.writerow(self._cells(row))
            fh.write(text.getvalue().encode())

        # Replace the file atomically (a kill now must not lose the rows kept), then append.
        atomic_write(self.path, write_kept)
        self._fh = open_append(self.path)
        self._writer = csv.DictWriter(self._fh, fieldnames=columns, extrasaction="ignore")

    def _cells(self, row: dict) -> dict:
        return {c: "" if _isnan(row.get(c)) else row.get(c, "") for c in self.columns}

    def write(self, row: dict) -> None:
        self._writer.writerow(self._cells(row))
        self._fh.flush()

    def flush(self) -> None:
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
    atomic_write(Path(path), lambda fh: np.savez(fh, **np_arrays))


def load_checkpoint(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of an ``.npz`` checkpoint (``None`` when missing), read without following links;
    ``DamagedRun`` naming the file when unreadable. Arrays of Python objects are refused: a
    checkpoint holds numbers and text only. Its fields are checked by the engine
    (``experiment/checkpoint.py``), beside the state they save."""
    path = Path(path)
    data = read_file(path)
    if data is None:
        return None
    if not data.startswith(b"PK"):  # not a zip archive (np.load would take it for a pickle)
        raise DamagedRun(f"{path} is not a readable checkpoint (not an .npz archive); delete it to start the run "
                         "afresh")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DamagedRun(f"{path} holds Python objects; a checkpoint holds plain arrays only, so it is "
                             "refused (delete it to start the run afresh)") from None
        raise DamagedRun(f"{path} is not a readable checkpoint ({exc}); delete it to start the run afresh") from None
    except Exception as exc:  # zipfile, OSError, EOFError...: a corrupt file, whatever the library says
        raise DamagedRun(f"{path} is not a readable checkpoint ({type(exc).__name__}: {exc}); delete it to "
                         "start the run afresh") from None
    return check_plain_arrays(arrays, path)


# ---------------------------------------------------------------------------- reading a run
def _damaged(cfg: RunConfig, path: Path, problems: list[str], summary: dict | None = None) -> RunResult:
    """A run that must not be served: status ``damaged``, no rows, the problems in the summary."""
    summary = dict(summary or {})
    summary.update(stored_status=summary.get("status"), status="damaged", problems=problems,
                   message="; ".join(problems))
    return RunResult(cfg, [], summary, path)


def _read_files(path: Path) -> tuple[dict, list[str]]:
    """The bytes of the run's files (``None`` when missing) and the problems met reading them
    (a link, a folder or a device where a file should be, permission denied)."""
    files, problems = {}, [f"{path / name} is a link; the run store never follows links" for name in links_in(path)]
    for name in (CONFIG, SUMMARY, METRICS):
        try:
            files[name] = read_file(path / name)
        except StoreError as exc:
            files[name] = None
            if not isinstance(exc, UnsafePath):  # links are reported above
                problems.append(str(exc))
    return files, problems


def _read_run(path: Path, cfg: RunConfig | None) -> RunResult | None:
    """The run in folder ``path``: ``None`` when there is none (no folder or no config.json yet),
    a ``damaged`` result when its files disagree. Without ``cfg`` a config that cannot be read
    raises ``DamagedRun`` (there is nothing to hang a result on)."""
    try:
        files, problems = _read_files(path)
    except StoreError as exc:  # the folder itself: a link, not a folder, unreadable
        if cfg is None:
            raise
        return _damaged(cfg, path, [str(exc)])
    summary, bad_summary = parse_summary(files[SUMMARY], path / SUMMARY)
    problems += bad_summary
    if files[CONFIG] is None:
        if not (summary or problems):
            return None  # a folder being set up
        problems.insert(0, f"{path / CONFIG} is missing or unreadable")
        if cfg is None:
            raise DamagedRun("; ".join(problems))
        return _damaged(cfg, path, problems, summary)
    try:
        stored = parse_config(files[CONFIG], path / CONFIG)
    except DamagedRun as exc:
        if cfg is None:
            raise
        return _damaged(cfg, path, [str(exc), *problems], summary)
    expected = cfg.key() if cfg is not None else (path.name if looks_like_key(path.name) else None)
    for key, where in ((expected, "its folder's key"), (summary.get("config_key"), "the key in summary.json")):
        if key is not None and stored.key() != key:
            problems.append(f"{path / CONFIG} does not hash to {where} {key} (it hashes to {stored.key()}): "
                            "edited after the run was stored")
            break
    metrics = parse_metrics(files[METRICS], path / METRICS) if files[METRICS] is not None else None
    if not any(str(path / METRICS) in p for p in problems):
        problems += metrics_problems(summary, files[METRICS], metrics, path / METRICS)
    config = cfg if cfg is not None else stored
    if problems:
        return _damaged(config, path, problems, summary)
    return RunResult(config, metrics.rows if metrics is not None else [], summary, path)


@dataclass(frozen=True)
class StoreEntry:
    """One folder of a store as listed by ``RunStore.entries``: ``status`` is the run's, or
    ``damaged`` with ``message`` saying why; ``result`` is ``None`` when no config could be read."""

    path: Path
    status: str
    message: str = ""
    result: RunResult | None = None


# ---------------------------------------------------------------------------- one run folder
class RunFolder:
    """The folder of one run: every file access the runner needs, confined to the store.

    Writing methods are meant to be called while holding ``RunStore.lock(cfg)``."""

    def __init__(self, path: Path, cfg: RunConfig):
        self.path, self.cfg = Path(path), cfg

    def load(self) -> RunResult | None:
        """The stored run (any status, ``damaged`` included), or ``None``."""
        return _read_run(self.path, self.cfg)

    def read_rows(self) -> list[dict]:
        """The complete rows of ``metrics.csv`` (a half-written last line dropped)."""
        return read_metrics(self.path / METRICS)

    def write_config(self) -> None:
        write_json(self.path / CONFIG, self.cfg.to_dict())

    def metrics_writer(self, columns: list[str], keep_until: tuple | None = None) -> MetricsWriter:
        """A writer of ``metrics.csv``: fresh, or (``keep_until``) keeping the rows up to there."""
        return MetricsWriter(self.path / METRICS, columns, keep_until=keep_until)

    def save_checkpoint(self, arrays: dict) -> None:
        save_checkpoint(self.path / CHECKPOINT, arrays)

    def load_checkpoint(self) -> dict[str, np.ndarray] | None:
        """The checkpoint's arrays (``DamagedRun`` when unreadable); the engine checks its fields."""
        return load_checkpoint(self.path / CHECKPOINT)

    def discard(self, *names: str) -> None:
        """Delete files of the run (default: metrics and checkpoint, to start afresh)."""
        for name in names or (METRICS, CHECKPOINT):
            remove(self.path / name)

    def write_summary(self, summary: dict) -> dict:
        """Write ``summary.json`` with ``rows`` and ``metrics_sha256`` of ``metrics.csv`` as it is
        now (flush the metrics writer first); returns what was written."""
        summary = {**summary, **_seal_fields(self.path / METRICS)}
        write_json(self.path / SUMMARY, summary)
        return summary


def _seal_fields(path: Path) -> dict:
    data = read_file(path)
    if data is None:
        return {"rows": 0, "metrics_sha256": None}
    return {"rows": len(parse_metrics(data, path).rows), "metrics_sha256": sha256(data)}


# ---------------------------------------------------------------------------- the store
class RunStore:
    """Folder of runs keyed by config hash (default: ``paths.user_store()``).

    ``load(cfg)`` returns a ``RunResult`` (any status; ``damaged`` with the problems in its
    summary when the files disagree) or ``None``; ``lock(cfg)`` makes the caller the run's
    only writer; ``entries()`` lists every folder, damaged ones with the reason."""

    def __init__(self, root=None):
        self.root = Path(root) if root is not None else user_store()

    def path(self, cfg: RunConfig) -> Path:
        return self.root / cfg.key()

    def open_run(self, cfg: RunConfig) -> RunFolder:
        """The run's folder (created, never a link: ``UnsafePath`` otherwise)."""
        with folder_fd(self.path(cfg), create=True):
            pass
        return RunFolder(self.path(cfg), cfg)

    @contextmanager
    def lock(self, cfg: RunConfig, *, wait: bool = True,
             on_wait: Callable[[str], None] | None = None) -> Iterator[RunFolder]:
        """Be the only writer of ``cfg``'s folder for the block (an OS lock: released if this
        process dies). If another process holds it: ``wait=False`` raises ``RunInProgress``
        naming the run and the holder's pid and host; otherwise ``on_wait(that message)`` is
        called (e.g. to print it) and the call waits. Not re-entrant within one process."""
        folder = self.open_run(cfg)
        with hold_lock(folder.path, f"run {cfg.key()} ({folder.path})", wait=wait, on_wait=on_wait):
            clean_temporaries(folder.path)
            yield folder

    def load(self, cfg: RunConfig) -> RunResult | None:
        return _read_run(self.path(cfg), cfg)

    @staticmethod
    def load_path(path) -> RunResult | None:
        """The run in folder ``path`` (its config read from there); ``DamagedRun`` when its
        config cannot be read, a ``damaged`` result when the files disagree."""
        return _read_run(Path(path), None)

    def entries(self) -> list[StoreEntry]:
        """Every folder in the store, oldest first; damaged ones (unreadable, a link, files that
        disagree) with the reason. Never raises for a damaged folder."""
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(f"{self.root}: cannot list the run store ({exc.strerror})") from None
        out = []
        for name in names:
            path = self.root / name
            if name.startswith("."):
                continue
            if path.is_symlink():
                out.append(StoreEntry(path, "damaged", f"{path} is a link; the run store never follows links"))
                continue
            if not path.is_dir():
                continue
            try:
                result = _read_run(path, None)
            except (StoreError, OSError) as exc:
                out.append(StoreEntry(path, "damaged", str(exc)))
                continue
            if result is not None:
                out.append(StoreEntry(path, result.status, result.summary.get("message", ""), result))
        return sorted(out, key=lambda e: mtime(e.path / CONFIG))

    def runs(self) -> list[RunResult]:
        """Every run whose config this version can read (one naming, say, a data set not
        installed here is left out; ``entries`` lists it), oldest first; damaged runs are
        included with status ``damaged``."""
        return [e.result for e in self.entries() if e.result is not None]

    def seal(self) -> list[tuple[Path, str]]:
        """Add ``rows`` and ``metrics_sha256`` to the summaries of ended runs stored before the
        store recorded them (only ``summary.json`` changes). Returns ``(folder, what was done)``
        for every entry; damaged runs are left as they are."""
        done = []
        for entry in self.entries():
            summary = entry.result.summary if entry.result is not None else {}
            if entry.status == "damaged":
                done.append((entry.path, f"left alone: {entry.message}"))
            elif entry.status not in FINAL_STATUSES:
                done.append((entry.path, f"left alone: status {entry.status}"))
            elif "metrics_sha256" in summary:
                done.append((entry.path, "already sealed"))
            else:
                sealed = RunFolder(entry.path, entry.result.config).write_summary(summary)
                done.append((entry.path, f"sealed: {sealed['rows']} rows"))
        return done
