"""Nested state dicts <-> flat npz arrays, and the checks a loaded checkpoint must pass.

A state dict (``Trajectory.state_dict``, ``RunState.state_dict``) nests dicts of tensors, numbers
and strings; ``to_arrays`` flattens it with dotted keys (``"branches.dom.rule.buf"``) into NumPy
arrays an ``.npz`` holds without pickle, ``from_arrays`` nests them again. ``Checks`` validates
fields of a loaded file (shape, dtype, finite, range) and raises ``CheckpointError`` naming the
file, the field and what was wrong: a damaged or foreign file is refused, never half-loaded.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

FORMAT = 2  # version of the layout written by this kit (1: the flat layout before trajectories)


class CheckpointError(ValueError):
    """A checkpoint or switch-point file that cannot be used (damaged, foreign or outdated)."""


def to_arrays(state: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """Flatten ``state`` (nested dicts of tensors, arrays, numbers, strings; ``None`` left out)."""
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(to_arrays(value, name + "."))
        elif isinstance(value, torch.Tensor):
            out[name] = value.detach().cpu().numpy()
        elif value is not None:
            out[name] = np.asarray(value)
    return out


def from_arrays(arrays: dict[str, np.ndarray]) -> dict:
    """Nest dotted keys again; 0-d arrays become Python numbers or strings."""
    out: dict = {}
    for name, value in arrays.items():
        *parents, leaf = name.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value.item() if value.ndim == 0 else value
    return out


class Checks:
    """Field checks on the arrays of the file ``path``; each failure names file and field."""

    def __init__(self, path, arrays: dict[str, np.ndarray]):
        self.path, self.arrays = Path(path), arrays

    def fail(self, field: str, what: str):
        raise CheckpointError(f"{self.path}: field {field!r} {what}; the file is damaged or was written by "
                              "another version of the kit (delete it, or run again with resume=False)")

    def get(self, field: str) -> np.ndarray:
        if field not in self.arrays:
            self.fail(field, "is missing")
        return self.arrays[field]

    def integer(self, field: str, low: int = 0) -> int:
        value = self.get(field)
        if value.ndim != 0 or value.dtype.kind not in "iu" or int(value) < low:
            self.fail(field, f"must be an integer >= {low}, got {value!r}")
        return int(value)

    def number(self, field: str, low: float = 0.0) -> float:
        value = self.get(field)
        if value.ndim != 0 or value.dtype.kind not in "iuf" or not math.isfinite(float(value)) or float(value) < low:
            self.fail(field, f"must be a finite number >= {low}, got {value!r}")
        return float(value)

    def real(self, field: str) -> float:
        """A float that may be NaN (a quantity not measured yet)."""
        value = self.get(field)
        if value.ndim != 0 or value.dtype.kind != "f":
            self.fail(field, f"must be a float, got {value!r}")
        return float(value)

    def text(self, field: str, allowed=None) -> str:
        value = self.get(field)
        if value.ndim != 0 or value.dtype.kind != "U" or (allowed is not None and str(value) not in allowed):
            self.fail(field, f"must be a string{' among ' + ', '.join(allowed) if allowed else ''}, got {value!r}")
        return str(value)

    def tensor(self, field: str, shape: tuple, dtype, *, finite: bool = True) -> np.ndarray:
        """``shape`` may hold ``None`` for a free dimension."""
        value = self.get(field)
        ok_shape = value.ndim == len(shape) and all(s is None or s == v for s, v in zip(shape, value.shape))
        if not ok_shape:
            self.fail(field, f"must have shape {shape}, got {value.shape}")
        if value.dtype != np.dtype(dtype):
            self.fail(field, f"must have dtype {np.dtype(dtype)}, got {value.dtype}")
        if finite and value.dtype.kind == "f" and not np.isfinite(value).all():
            self.fail(field, "has non-finite entries")
        return value


def check_trajectory(checks: Checks, prefix: str, num_params: int, dtype: str, k: int) -> None:
    """The fields of one ``Trajectory.state_dict()`` under ``prefix`` (e.g. ``"base."``)."""
    status = checks.text(prefix + "status", ("running", "completed", "diverged"))
    live = status == "running"  # a blown-up trajectory may hold non-finite numbers: it is never stepped again
    checks.tensor(prefix + "params", (num_params,), dtype, finite=live)
    checks.tensor(prefix + "gen", (None,), np.uint8)
    checks.integer(prefix + "hvps")
    checks.text(prefix + "message")
    checks.real(prefix + "residual")
    if prefix + "eigs" in checks.arrays:
        checks.tensor(prefix + "eigs", (k,), dtype, finite=False)
    for name in [n for n in checks.arrays if n.startswith(prefix + "rule.")]:
        if name.endswith(".t"):
            checks.integer(name, 0)
        else:
            checks.tensor(name, (num_params,), dtype, finite=live)
    if prefix + "tracker.block" in checks.arrays:
        checks.tensor(prefix + "tracker.block", (num_params, None), dtype, finite=live)
        checks.integer(prefix + "tracker.updates")
        if prefix + "tracker.basis" in checks.arrays:
            checks.tensor(prefix + "tracker.basis", (num_params, k), dtype, finite=live)
            checks.tensor(prefix + "tracker.values", (k,), dtype, finite=live)
