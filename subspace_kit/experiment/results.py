"""A run read back from the store, and the questions the report and the notebooks ask of it.

``RunResult`` holds a run's config, its metric rows (in logged order) and its summary. Every
analysis of a finished run that more than one place needs lives here as a method, once.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import RunConfig


@dataclass
class RunResult:
    """A run read back from the store: ``rows`` are the metric dicts in logged order."""

    config: RunConfig
    rows: list[dict]
    summary: dict
    path: Path

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

    def curve(self, mode: str, column: str = "train_loss") -> tuple[list, list]:
        """``(steps, values)`` of one mode's curve, phase 1 included (the shared history)."""
        pts = [(r["step"], r[column]) for r in self.rows
               if (r["phase"] == "warmup" or r["mode"] == mode) and column in r]
        return [s for s, _ in pts], [v for _, v in pts]
