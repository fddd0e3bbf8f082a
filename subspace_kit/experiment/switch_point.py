"""Phase 1 once: the state of a run at its switch, stored so that other runs start there.

Runs whose configs agree up to the switch (same ``switch_point_key``) have the same phase 1, to
the bit: the same data, model, base optimizer, minibatches, subspace refreshes and logged rows.
The first of them to reach the switch saves a *switch point*,
``<store>/switch_points/<key>.npz``: the step, the base trajectory's parameters, update-rule
state, minibatch RNG, tracker block and HVP count, the switch rule's state, the wall seconds and
the phase-1 metric rows. Later runs (and the dashboard) load it and go straight to phase 2.

The key is ``RunConfig.phase1_key()`` (every field except the modes, their projection settings,
``steps``, ``log_every`` and ``checkpoint_every``) plus what that key leaves out but phase 1's
rows or numbers still depend on: ``log_every`` (which rows are logged), the switch-rule form
(for ``switch="rule"``) and the torch thread count (1 and 2 threads give different float sums).
A switch point is used only by a run that goes past it (``steps`` > its step).

The tracker's basis in use is not stored (it is as large as the block): phase 2 re-solves the
subspace of every trajectory at its first step, from the stored block, before any basis is read.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .checkpoint import FORMAT, Checks, check_trajectory, from_arrays, to_arrays
from .config import RunConfig
from .metrics import INT_COLUMNS, LATE_COLUMNS, TEXT_COLUMNS, columns
from .switch import SwitchRule

FOLDER = "switch_points"


def switch_point_key(cfg: RunConfig, threads: int) -> str:
    """Hash of everything phase 1 of ``cfg`` (its state and its rows) depends on."""
    extra = {"phase1": cfg.phase1_key(), "log_every": cfg.log_every, "threads": int(threads),
             "switch_rule": SwitchRule.FORM if cfg.switch == "rule" else None}
    return hashlib.sha256(json.dumps(extra, sort_keys=True).encode()).hexdigest()[:16]


def switch_point_path(root, cfg: RunConfig, threads: int) -> Path:
    return Path(root) / FOLDER / f"{switch_point_key(cfg, threads)}.npz"


@dataclass
class SwitchPoint:
    """A run's state at its switch step ``t``. ``base``: ``Trajectory.state_dict(with_basis=False)``;
    ``rule``: ``SwitchRule.state_dict()``; ``rows``: the phase-1 metric rows in logged order."""

    t: int
    switch_reason: str
    wall: float
    phase1_hvps: int
    threads: int
    rule: dict
    base: dict
    rows: list[dict]
    source: str = ""  # the file it was read from

    def to_arrays(self, cfg: RunConfig) -> dict[str, np.ndarray]:
        """The npz layout: the state under ``base.`` / ``rule.``, rows as a float64 table."""
        numeric = [c for c in columns(cfg) if c not in TEXT_COLUMNS]
        table = np.array([[float(r[c]) for c in numeric] for r in self.rows], dtype=np.float64).reshape(-1, len(numeric))
        return to_arrays({"format": FORMAT, "kind": "switch_point", "key": switch_point_key(cfg, self.threads),
                          "config": json.dumps(cfg.to_dict(), sort_keys=True), "t": self.t,
                          "switch_reason": self.switch_reason, "wall": self.wall, "phase1_hvps": self.phase1_hvps,
                          "threads": self.threads, "rule": self.rule, "base": self.base,
                          "rows": table, "row_columns": np.array(numeric)})

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], path, cfg: RunConfig, num_params: int) -> "SwitchPoint":
        """Validate the arrays of the file ``path`` for ``cfg`` and build the switch point;
        ``CheckpointError`` naming the file and field otherwise."""
        checks = Checks(path, arrays)
        if checks.integer("format") != FORMAT or checks.text("kind") != "switch_point":
            checks.fail("format", f"must be {FORMAT} for a switch point")
        threads = checks.integer("threads", 1)
        if checks.text("key") != switch_point_key(cfg, threads):
            checks.fail("key", f"does not match the config (expected {switch_point_key(cfg, threads)})")
        t = checks.integer("t", 0)
        checks.number("wall")
        checks.integer("phase1_hvps")
        checks.text("switch_reason")
        checks.integer("rule.checks")
        checks.real("rule.ema")
        checks.text("rule.form")
        check_trajectory(checks, "base.", num_params, cfg.dtype, cfg.k)
        numeric = [c for c in columns(cfg) if c not in TEXT_COLUMNS]
        stored = [str(c) for c in checks.get("row_columns")]
        if stored not in (numeric, [c for c in numeric if c not in LATE_COLUMNS]):
            checks.fail("row_columns", f"must be {numeric}")
        numeric = stored
        table = checks.tensor("rows", (None, len(numeric)), np.float64, finite=False)
        steps = table[:, numeric.index("step")] if len(table) else np.zeros(0)
        if not (np.isfinite(steps).all() and (steps >= 0).all() and (steps < t).all() and (np.diff(steps) > 0).all()):
            checks.fail("rows", f"must hold increasing steps in [0, {t})")
        state = from_arrays(arrays)
        return cls(t, str(state["switch_reason"]), float(state["wall"]), int(state["phase1_hvps"]), threads,
                   state["rule"], state["base"], [_row(values, numeric) for values in table], str(path))


def _row(values, numeric: list[str]) -> dict:
    row = {"phase": "warmup", "mode": "none", **{c: math.nan for c in LATE_COLUMNS}}
    for c, v in zip(numeric, values):
        row[c] = int(v) if c in INT_COLUMNS and math.isfinite(v) else float(v)
    return row

