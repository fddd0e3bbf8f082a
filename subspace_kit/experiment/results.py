"""A run read back from the store, and the questions the report and the notebooks ask of it.

``RunResult`` holds a run's config, its metric rows (in logged order) and its summary. Every
analysis of a finished run that more than one place needs lives here as a method, once:

- rows: ``warmup_rows``, ``main_rows(mode)`` (optionally only those where a column is finite),
  ``series(mode, column)`` and ``curve(mode, column)`` as ``(steps, values)``;
- losses: ``loss_at_switch()`` and ``final_loss(mode)`` (medians over a few logged rows, so one
  spike at the switch or at the end cannot decide a verdict), ``relative_loss(mode)``;
- alignment: ``alignment_checks()`` (χ_k(∇L) of the base optimizer before the switch),
  ``random_alignment()`` (√(k/P), a random k-dimensional subspace);
- ``effective_lr(until)``: η_dom and η_bulk averaged over phase 1 (the paper's Table 1);
- ``truncated(horizon)``: the same run seen only up to ``horizon`` steps after the switch.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path

from .config import RunConfig

WINDOW = 5         # logged rows in a robust final loss (median): one outlier among five cannot move it
SWITCH_WINDOW = 3  # logged rows on each side of the switch in the robust loss at the switch


def is_finite(value) -> bool:
    """True for an int or float that is neither NaN nor infinite (CSV gaps read back as NaN)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class RunResult:
    """A run read back from the store: ``rows`` are the metric dicts in logged order."""

    config: RunConfig
    rows: list[dict]
    summary: dict
    path: Path
    _num_parameters: int | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ identity and status
    @property
    def status(self) -> str:
        return self.summary.get("status", "unknown")

    @property
    def switch_step(self) -> int | None:
        """The step phase 2 began: from the summary, or from the rows of a run in progress."""
        if self.summary.get("switch_step") is not None:
            return self.summary["switch_step"]
        main = [r["step"] for r in self.rows if r["phase"] == "main"]
        return min(main) if main else None

    def mode_status(self, mode: str) -> str:
        """``completed``, ``diverged``, ``stopped``... of one mode after the switch."""
        return self.summary.get("modes", {}).get(mode, {}).get("status", self.status)

    def diverged(self, mode: str) -> bool:
        return self.mode_status(mode) == "diverged"

    @property
    def horizon(self) -> int:
        """Steps logged after the switch (last logged main step − switch step; 0 if none)."""
        main = [r["step"] for r in self.rows if r["phase"] == "main"]
        return (max(main) - self.switch_step) if main and self.switch_step is not None else 0

    # ------------------------------------------------------------------ rows
    def warmup_rows(self, column: str | None = None) -> list[dict]:
        """Phase-1 rows (the base optimizer before the switch); with ``column``, only the rows
        where it is a finite number."""
        return [r for r in self.rows if r["phase"] == "warmup" and (column is None or is_finite(r.get(column)))]

    def main_rows(self, mode: str, column: str | None = None) -> list[dict]:
        """Rows of ``mode`` after the switch; with ``column``, only those where it is finite."""
        return [r for r in self.rows if r["phase"] == "main" and r["mode"] == mode
                and (column is None or is_finite(r.get(column)))]

    def series(self, mode: str, column: str = "train_loss") -> tuple[list, list]:
        """``(steps, values)`` of ``column`` in ``mode`` after the switch, finite values only."""
        rows = self.main_rows(mode, column)
        return [r["step"] for r in rows], [r[column] for r in rows]

    def curve(self, mode: str, column: str = "train_loss") -> tuple[list, list]:
        """``(steps, values)`` of one mode's curve, phase 1 included (the shared history)."""
        pts = [(r["step"], r[column]) for r in self.rows
               if (r["phase"] == "warmup" or r["mode"] == mode) and column in r]
        return [s for s, _ in pts], [v for _, v in pts]

    # ------------------------------------------------------------------ losses
    def loss_at_switch(self, window: int = SWITCH_WINDOW, mode: str = "none") -> float:
        """Training loss at the switch, robustly: the median of the last ``window`` logged
        phase-1 losses, the loss logged at the switch step (shared by every mode) and the first
        ``window`` losses of ``mode`` after it. The window is centred on the switch, so on a
        curve that is still falling the median is the loss at the switch, and one spike there
        cannot move it. A run without ``mode`` uses the rows before and at the switch only; a run
        without phase-1 rows, the first rows after the switch of all modes. NaN if none is finite."""
        before = [r["train_loss"] for r in self.warmup_rows("train_loss")][-window:]
        at = [r["train_loss"] for r in self.rows if r["phase"] == "main" and r["step"] == self.switch_step
              and is_finite(r.get("train_loss"))][:1]
        after = [r["train_loss"] for r in self.main_rows(mode, "train_loss") if r["step"] > self.switch_step][:window]
        values = before + at + (after if before else [])
        if not values:
            values = sorted((r for r in self.rows if r["phase"] == "main" and is_finite(r.get("train_loss"))),
                            key=lambda r: r["step"])
            values = [r["train_loss"] for r in values][:window]
        return statistics.median(values) if values else math.nan

    def final_loss(self, mode: str, window: int = WINDOW) -> float:
        """Median of the last ``window`` finite training losses of ``mode`` (NaN if none)."""
        _, values = self.series(mode)
        return statistics.median(values[-window:]) if values else math.nan

    def relative_loss(self, mode: str) -> tuple[list, list]:
        """``(steps, loss / loss_at_switch())`` of ``mode`` after the switch: how much of the
        loss left at the switch each mode keeps (1 = no progress)."""
        steps, values = self.series(mode)
        base = self.loss_at_switch()
        return steps, [v / base for v in values]

    def decrease(self, mode: str) -> float:
        """``loss_at_switch() − final_loss(mode)``: the loss a mode removed after the switch."""
        return self.loss_at_switch() - self.final_loss(mode)

    # ------------------------------------------------------------------ alignment
    def alignment_checks(self) -> tuple[list, list]:
        """``(steps, χ)``: χ_k(∇L) of the full gradient at each phase-1 check."""
        rows = self.warmup_rows("alignment_full")
        return [r["step"] for r in rows], [r["alignment_full"] for r in rows]

    def num_parameters(self) -> int:
        """P, the model's trainable parameters (from the summary, else by building the model)."""
        if self._num_parameters is None:
            stored = self.summary.get("num_parameters")
            if stored is None:
                from ..datasets import load as load_dataset
                from ..models import build_model, num_parameters
                options = {} if self.config.data_source == "auto" else {"source": self.config.data_source}
                data = load_dataset(self.config.dataset, **options)
                stored = num_parameters(build_model(self.config.model, data=data, seed=self.config.seed))
            self._num_parameters = int(stored)
        return self._num_parameters

    def random_alignment(self) -> float:
        """√(k/P): the typical χ_k of a fixed vector on a random k-dimensional subspace (its
        expected square is exactly k/P), the baseline an alignment is compared with."""
        return math.sqrt(self.config.k / self.num_parameters())

    # ------------------------------------------------------------------ optimizer
    def effective_lr(self, until: int | None = None) -> dict:
        """η_dom and η_bulk (``‖P Δθ‖/‖P g‖``, ``‖(I−P) Δθ‖/‖(I−P) g‖``, logged by the engine
        where a basis was fresh) averaged over the phase-1 rows with ``0 < step < until``
        (step 0 has no optimizer history). Returns ``{"dom", "bulk", "count"}`` (NaN, NaN, 0
        when none was logged)."""
        rows = [r for r in self.warmup_rows("eff_lr_dom") if r["step"] > 0 and (until is None or r["step"] < until)
                and is_finite(r.get("eff_lr_bulk"))]
        if not rows:
            return {"dom": math.nan, "bulk": math.nan, "count": 0}
        return {"dom": statistics.fmean(r["eff_lr_dom"] for r in rows),
                "bulk": statistics.fmean(r["eff_lr_bulk"] for r in rows), "count": len(rows)}

    # ------------------------------------------------------------------ views
    def truncated(self, horizon: int) -> "RunResult":
        """This run seen only up to ``horizon`` steps after the switch (phase 1 kept whole), e.g.
        to compare runs of different lengths over the same horizon."""
        if self.switch_step is None:
            return self
        end = self.switch_step + horizon
        rows = [r for r in self.rows if r["phase"] == "warmup" or r["step"] <= end]
        return replace(self, rows=rows)
