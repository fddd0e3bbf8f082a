"""When phase 1 ends: the switch rule.

The replication's rule (shared/paper/BRIEF.md, "Protocol", tagged [repl]): every
``switch_check_every`` steps, fold χ_k(∇L) of the full-batch gradient into an exponential moving
average with factor 0.9 *started at the first χ* (no bias correction) and switch when the average
exceeds 0.95 (strictly). ``SwitchRule`` is that rule.

Runs made before it (the shipped ``long`` run, protocol 1 of the kit) used a bias-corrected
average started from 0: ``ema ← f·ema + (1−f)·χ``, compared as ``ema / (1 − f^n)``. On a χ
sequence that starts low the two fire at different checks (0 then 1s: check 11 vs check 29).
``BiasCorrectedRule`` keeps that form so old runs can be read and labelled; every run records the
form it used (``FORM``) in its summary.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class SwitchRule:
    """The replication's switch rule as a small state machine.

    ``update(chi)`` folds one χ into the average (the first finite χ *is* the average) and returns
    ``True`` when the average exceeds ``threshold``. Non-finite χ (no basis yet) are skipped
    without resetting. ``ema`` (NaN before the first check) and ``checks`` are the whole state."""

    threshold: float = 0.95
    factor: float = 0.9
    ema: float = math.nan
    checks: int = 0

    FORM = "ema-from-first-chi"  # recorded in run summaries and switch points

    @property
    def value(self) -> float:
        """The average so far (NaN before the first check)."""
        return self.ema if self.checks else math.nan

    def update(self, chi: float) -> bool:
        if not math.isfinite(chi):
            return False
        self.checks += 1
        self.ema = chi if self.checks == 1 else self.factor * self.ema + (1 - self.factor) * chi
        return self.value > self.threshold

    def state_dict(self) -> dict:
        return {"ema": self.ema, "checks": self.checks, "form": self.FORM}

    def load_state_dict(self, state: dict) -> None:
        form = str(state.get("form", BiasCorrectedRule.FORM))
        if form != self.FORM:
            raise ValueError(f"the saved switch rule is {form!r}, this engine uses {self.FORM!r}; "
                             "run again with resume=False to start over")
        self.ema, self.checks = float(state["ema"]), int(state["checks"])


@dataclass
class BiasCorrectedRule(SwitchRule):
    """The kit's earlier rule (protocol 1): EMA from 0, bias-corrected. Kept to read and label the
    runs made with it, and to show where the two forms differ; new runs use ``SwitchRule``."""

    ema: float = 0.0
    FORM = "bias-corrected-ema"

    @property
    def value(self) -> float:
        return self.ema / (1 - self.factor ** self.checks) if self.checks else math.nan

    def update(self, chi: float) -> bool:
        if not math.isfinite(chi):
            return False
        self.checks += 1
        self.ema = self.factor * self.ema + (1 - self.factor) * chi
        return self.value > self.threshold


def first_switch(chis, *, threshold: float = 0.95, factor: float = 0.9, rule: type = SwitchRule) -> int | None:
    """Index of the check in the sequence ``chis`` at which ``rule`` fires, or ``None``."""
    state = rule(threshold, factor)
    for i, chi in enumerate(chis):
        if state.update(chi):
            return i
    return None
