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
def check_plain_arrays(arrays: dict, path: Path) -> dict:
    """A loaded ``.npz`` holds numbers and text only (its fields are checked by the engine, beside
    the state they save: ``experiment/checkpoint.py``); ``DamagedRun`` names the first other field."""
    for name, a in arrays.items():
        if a.dtype.kind not in "biufU":
            raise DamagedRun(f"{path}: checkpoint field {name!r} has dtype {a.dtype}; checkpoints hold numbers "
                             "and text only; delete the checkpoint to start the run afresh")
    return arrays
