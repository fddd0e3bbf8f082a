"""Checks that a stored run is what it claims to be: config against key, metrics against the
summary's row count and checksum, checkpoint fields against the config.

Every check returns (or raises with) messages that name the file and, for a checkpoint, the
field. Nothing here writes.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import RunConfig
from .storefiles import DamagedRun

FINAL_STATUSES = ("completed", "diverged", "stopped", "failed")  # metrics.csv no longer grows
PHASES = ("warmup", "main")
_KEY = re.compile(r"[0-9a-f]{16}")


def looks_like_key(name: str) -> bool:
    """Whether a folder name is a config key (16 hex digits)."""
    return bool(_KEY.fullmatch(name))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_cell(value: str):
    """A CSV cell back to a value: ``""`` is NaN (not measured), then int, float or text."""
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


@dataclass
class Metrics:
    """``metrics.csv`` parsed: ``rows`` (complete lines only), ``partial`` (a last line without
    its newline was dropped: a writer died mid-row) and ``problems`` (malformed lines)."""

    header: list[str]
    rows: list[dict]
    partial: bool = False
    problems: list[str] = field(default_factory=list)


def parse_metrics(data: bytes, path: Path) -> Metrics:
    """Parse the bytes of ``metrics.csv`` at ``path`` (named in every problem)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Metrics([], [], problems=[f"{path} is not UTF-8 text (byte {exc.start})"])
    partial = bool(text) and not text.endswith("\n")
    if partial:
        text = text[:text.rfind("\n") + 1]
    lines = list(csv.reader(io.StringIO(text, newline="")))
    if not lines:
        return Metrics([], [], partial, [f"{path} has no header line"])
    header, rows, problems = lines[0], [], []
    if not {"step", "phase", "mode"} <= set(header):
        problems.append(f"{path}: the header lacks step, phase or mode ({','.join(header)[:80]})")
        return Metrics(header, [], partial, problems)
    for number, cells in enumerate(lines[1:], start=2):
        if len(cells) != len(header):
            problems.append(f"{path} line {number} has {len(cells)} cells, the header has {len(header)}")
            continue
        row = {k: parse_cell(v) for k, v in zip(header, cells)}
        if not (isinstance(row["step"], int) and row["step"] >= 0 and row["phase"] in PHASES
                and isinstance(row["mode"], str)):
            problems.append(f"{path} line {number}: bad step, phase or mode "
                            f"({row['step']!r}, {row['phase']!r}, {row['mode']!r})")
            continue
        rows.append(row)
    return Metrics(header, rows, partial, problems)


def metrics_problems(summary: dict, data: bytes | None, metrics: Metrics | None, path: Path) -> list[str]:
    """What is wrong with ``metrics.csv`` (bytes ``data``, parsed ``metrics``) given the summary.

    A run still ``running`` may lack the file or end in a half-written line (dropped, not a
    problem). A run whose summary says it ended must match the ``rows`` and ``metrics_sha256``
    recorded there; a legacy summary without them must at least end in a complete line (and,
    if completed, have rows)."""
    status = summary.get("status")
    if status not in FINAL_STATUSES:  # a writer may be setting the file up, or was killed doing so
        return list(metrics.problems) if metrics is not None else []
    if data is None:
        return [f"{path} is missing (the run's summary says {status!r})"]
    problems = list(metrics.problems)
    if "metrics_sha256" in summary:
        if sha256(data) != summary["metrics_sha256"]:
            problems.append(f"{path} does not match the checksum in summary.json: {len(metrics.rows)} rows"
                            f"{' and a cut-off line' if metrics.partial else ''}, the summary records "
                            f"{summary.get('rows')} (edited or truncated after the run ended)")
        return problems
    if metrics.partial:
        problems.append(f"{path} ends inside a row (truncated after the run ended)")
    if status == "completed" and not metrics.rows:
        problems.append(f"{path} has no rows, yet the run is completed")
    return problems


def parse_config(data: bytes, path: Path) -> RunConfig:
    """``config.json`` bytes to a ``RunConfig``; ``DamagedRun`` naming the file otherwise."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DamagedRun(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise DamagedRun(f"{path} must hold a JSON object of config fields, not {type(raw).__name__}")
    try:
        return RunConfig.from_dict(raw)
    except (ValueError, TypeError) as exc:
        raise DamagedRun(f"{path}: {exc}") from None


def parse_summary(data: bytes | None, path: Path) -> tuple[dict, list[str]]:
    """``summary.json`` bytes to a dict (empty when missing) and its problems."""
    if data is None:
        return {}, []
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return {}, [f"{path} is not valid JSON ({exc})"]
    if not isinstance(raw, dict):
        return {}, [f"{path} must hold a JSON object, not {type(raw).__name__}"]
    return raw, []


# ---------------------------------------------------------------------------- checkpoints
_BRANCH_STATUSES = ("running", "completed", "diverged", "stopped", "failed")


class _Checkpoint:
    """Field checks of one checkpoint; ``bad`` raises ``DamagedRun`` naming the field."""

    def __init__(self, arrays: dict, path: Path):
        self.arrays, self.path = arrays, path

    def bad(self, name: str, why: str):
        raise DamagedRun(f"{self.path}: checkpoint field {name!r} {why}; delete the checkpoint to start the run "
                         "afresh")

    def scalar(self, name: str, kind: str, *, required: bool = False, low=None, finite: bool = True):
        """The 0-d array ``name`` as a Python number of NumPy kind ``kind`` ('i' or 'f')."""
        if name not in self.arrays:
            if required:
                self.bad(name, "is missing")
            return None
        a = self.arrays[name]
        kinds = "iu" if kind == "i" else "iuf"
        if a.shape != () or a.dtype.kind not in kinds:
            self.bad(name, f"must be a single {'integer' if kind == 'i' else 'number'}, got dtype {a.dtype} "
                           f"shape {a.shape}")
        value = int(a) if kind == "i" else float(a)
        if kind == "f" and finite and not math.isfinite(value):
            self.bad(name, f"must be finite, got {value}")
        if low is not None and value < low:
            self.bad(name, f"must be >= {low}, got {value}")
        return value

    def floats(self, name: str, ndim: int, *, rows: int | None = None, cols: int | None = None):
        """The float array ``name``: ``ndim`` dimensions, all finite, optional shape constraints."""
        if name not in self.arrays:
            return None
        a = self.arrays[name]
        if a.dtype.kind != "f" or a.ndim != ndim:
            self.bad(name, f"must be a {ndim}-d float array, got dtype {a.dtype} shape {a.shape}")
        if (rows is not None and a.shape[0] != rows) or (cols is not None and a.shape[1] != cols):
            want = tuple(x if x is not None else "any" for x in (rows, cols)[:ndim])
            self.bad(name, f"has shape {a.shape}, expected {want}")
        if not np.isfinite(a).all():
            self.bad(name, "has non-finite entries (nan or inf)")
        return a

    def text(self, name: str, allowed=None):
        if name not in self.arrays:
            return None
        a = self.arrays[name]
        if a.dtype.kind != "U" or a.shape != ():
            self.bad(name, f"must be a text scalar, got dtype {a.dtype} shape {a.shape}")
        if allowed is not None and str(a) not in allowed:
            self.bad(name, f"must be one of {', '.join(allowed)}; got {str(a)!r}")
        return str(a)


def check_checkpoint(arrays: dict, path: Path, cfg: RunConfig | None = None) -> dict:
    """Validate the fields of a loaded ``checkpoint.npz`` (the runner's format) and return it.

    Checked: ``t`` (0 <= t <= steps), ``switch_step`` (-1 before the switch, else in [0, t]),
    scalars finite and non-negative where they count something, every branch the config needs
    present, parameters / tracker block / basis / eigenvalues as finite float arrays of
    consistent shapes (and of the config's dtype), generator states as uint8, statuses known.
    Unknown fields only get the dtype check (plain numbers or text). ``DamagedRun`` names the
    first bad field."""
    ck = _Checkpoint(arrays, path)
    for name, a in arrays.items():
        if a.dtype.kind not in "biufU":
            ck.bad(name, f"has dtype {a.dtype}; checkpoints hold numbers and text only")
    t = ck.scalar("t", "i", required=True, low=0)
    if cfg is not None and t > cfg.steps:
        ck.bad("t", f"is {t}, past the run's steps={cfg.steps}")
    switch = ck.scalar("switch_step", "i", required=True, low=-1)
    if switch > t:
        ck.bad("switch_step", f"is {switch}, after the checkpoint's step t={t}")
    ck.scalar("wall", "f", low=0)
    ck.scalar("ema", "f")
    for name in ("n_checks", "phase1_hvps"):
        ck.scalar(name, "i", low=0)
    ck.text("switch_reason")
    prefixes = sorted({k.split(".", 1)[0] for k in arrays if k.endswith(".params")})
    if cfg is not None:
        needed = ["base"] if switch < 0 else list(cfg.modes)
        for prefix in needed:
            if prefix not in prefixes:
                ck.bad(f"{prefix}.params", "is missing" + (" (the state before the switch)" if switch < 0 else
                                                            f" (mode {prefix!r} of this config)"))
    size = None
    for prefix in prefixes:
        _check_branch(ck, prefix, cfg, size)
        size = arrays[f"{prefix}.params"].shape[0]
    return arrays


def _check_branch(ck: _Checkpoint, prefix: str, cfg: RunConfig | None, size: int | None) -> None:
    """Fields ``<prefix>.*`` of one branch; ``size``: the parameter count of earlier branches."""
    name = f"{prefix}.params"
    params = ck.floats(name, 1, rows=size)
    if cfg is not None and params.dtype != np.dtype(cfg.dtype):
        ck.bad(name, f"has dtype {params.dtype}, the config says {cfg.dtype}")
    n = params.shape[0]
    gen = ck.arrays.get(f"{prefix}.gen")
    if gen is not None and (gen.dtype != np.uint8 or gen.ndim != 1):
        ck.bad(f"{prefix}.gen", f"must be a 1-d uint8 array (a generator state), got dtype {gen.dtype} "
                                f"shape {gen.shape}")
    ck.scalar(f"{prefix}.hvps", "i", low=0)
    ck.scalar(f"{prefix}.tracker_updates", "i", low=0)
    ck.scalar(f"{prefix}.residual", "f", finite=False)
    ck.text(f"{prefix}.status", _BRANCH_STATUSES)
    ck.text(f"{prefix}.message")
    block = ck.floats(f"{prefix}.block", 2, rows=n)
    k = cfg.k if cfg is not None else None
    basis = ck.floats(f"{prefix}.basis", 2, rows=n, cols=k)
    eigs = ck.floats(f"{prefix}.eigs", 1)
    if block is not None and (basis is None or eigs is None):
        ck.bad(f"{prefix}.basis" if basis is None else f"{prefix}.eigs", "is missing (the tracker block is there)")
    if eigs is not None and basis is not None and eigs.shape[0] < basis.shape[1]:
        ck.bad(f"{prefix}.eigs", f"has {eigs.shape[0]} values for a basis of {basis.shape[1]} vectors")
    for key in ck.arrays:
        if key.startswith(f"{prefix}.rule.") and ck.arrays[key].dtype.kind == "f":
            if not np.isfinite(ck.arrays[key]).all():
                ck.bad(key, "has non-finite entries (nan or inf)")
