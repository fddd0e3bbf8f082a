"""The experiment engine: configs and presets, update rules, trajectories, the switch protocol,
the run store, the shipped runs, and the report (figure + claims table)."""
from .config import MODES, OPTIMIZERS, PRESETS, RunConfig
from .problem import Problem
from .results import RunResult
from .runner import iter_run, run
from .store import RunStore
from .trajectory import RunDiverged, Trajectory

__all__ = ["RunConfig", "PRESETS", "MODES", "OPTIMIZERS", "iter_run", "run", "RunStore", "RunResult", "Problem",
           "Trajectory", "RunDiverged"]
