"""The experiment engine: configs and presets, projected update rules, the switch protocol,
the run store, and the report (figure + claims table)."""
from .config import MODES, OPTIMIZERS, PRESETS, RunConfig
from .runner import iter_run, run
from .store import RunResult, RunStore

__all__ = ["RunConfig", "PRESETS", "MODES", "OPTIMIZERS", "iter_run", "run", "RunStore", "RunResult"]
