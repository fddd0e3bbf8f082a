"""Live training curves: one plotly ``FigureWidget``, one trace per mode, updated in batches.

Rows are metric dicts as the experiment engine yields them (``step``, ``phase``, ``mode`` and
metric columns such as ``train_loss``). Each panel plots one metric against the step: the
shared history before the switch (``phase == "warmup"``) as one grey curve, then one curve per
mode (SGD, Dom-SGD, Bulk-SGD). Non-finite values are skipped (a log axis cannot show them, and
the engine writes NaN where a metric was not measured at that step).

Updates are throttled: ``add`` buffers rows and pushes them to the figure at most
``max_updates_per_s`` times a second (a timer sends what is left), so a fast run does not flood
the browser. A repeated ``(phase, mode, step)`` replaces the earlier value (a resumed run logs
again the steps after its last checkpoint).

The Voila trap: a ``FigureWidget`` sends later changes to the page as one-off messages, which
are lost when no page is listening yet (Voila still executing the notebook, a page reloaded in
JupyterLab). So curves known in advance are passed to the constructor (the figure is built
with its data), and after updates the widget's saved state is refreshed too, so a page that
connects later draws what the kernel has.
"""
from __future__ import annotations

import copy
import math
import threading
import time
from dataclasses import dataclass
from typing import Iterable, Mapping

import plotly.graph_objects as go
from plotly.subplots import make_subplots

MODE_LABELS = {"none": "SGD", "dom": "Dom-SGD", "bulk": "Bulk-SGD", "interp": "Interp-SGD"}
MODE_COLORS = {"none": "#1f77b4", "dom": "#d62728", "bulk": "#2ca02c", "interp": "#9467bd"}
WARMUP = "warmup"
WARMUP_LABEL = "SGD before the switch"
WARMUP_COLOR = "#7f7f7f"
FEW_POINTS = 30


@dataclass(frozen=True)
class Panel:
    """One subplot: the metric column it shows, its axis title and scale."""

    title: str
    log: bool = False
    range: tuple | None = None


PANELS = {
    "train_loss": Panel("training loss", log=True),
    "alignment_full": Panel("alignment χ<sub>k</sub>(∇L)", range=(0.0, 1.05)),
    "update_norm": Panel("update norm ‖Δθ‖", log=True),
    "train_acc": Panel("training accuracy", range=(0.0, 1.02)),
    "sharpness": Panel("sharpness λ<sub>1</sub>"),
}


def is_finite(value) -> bool:
    """A number that is not NaN or ±inf (``None`` and text are not)."""
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


class LiveCurves:
    """Curves of a run as it goes, on ``self.figure`` (a plotly ``FigureWidget``).

    ``rows``: rows known now (a cached run); the figure is built with them. ``modes``: the
    modes that get a curve from the start (others get one when their first row arrives).
    ``panels``: metric columns, one subplot each (see ``PANELS``). ``labels``: mode → curve name.
    ``max_updates_per_s``: the most figure updates a second.
    """

    def __init__(self, rows: Iterable[dict] = (), *, modes=("none", "dom", "bulk"),
                 panels=("train_loss", "alignment_full"), labels: Mapping[str, str] | None = None,
                 max_updates_per_s: float = 4.0, state_sync_s: float = 2.0, height: int | None = None,
                 title: str | None = None):
        unknown = [p for p in panels if p not in PANELS]
        if unknown or not panels:
            raise ValueError(f"panels must be a non-empty selection of {', '.join(PANELS)}; got {list(panels)}")
        if not max_updates_per_s > 0:
            raise ValueError(f"max_updates_per_s must be > 0, got {max_updates_per_s}")
        self.panels = tuple(panels)
        self.labels = {**MODE_LABELS, **(labels or {})}
        self.min_interval = 1.0 / max_updates_per_s
        self.state_sync_s = state_sync_s
        self._lock = threading.RLock()
        self._curves: list[str] = [WARMUP, *modes]
        # (panel, curve) -> {step: value}; dicts keep arrival order, and steps arrive in order
        self._points: dict[tuple[str, str], dict] = {}
        self._dirty: set[tuple[str, str]] = set()
        self._switch_step: int | None = None
        self._last_flush = 0.0
        self._last_state_sync = 0.0
        self._timer: threading.Timer | None = None
        for row in rows:
            self._ingest(row)
        self._dirty.clear()
        self.figure = go.FigureWidget(self._build(height, title))
        self._index = {key: i for i, key in enumerate(self._trace_keys())}

    # ------------------------------------------------------------------ public
    def add(self, row: dict) -> None:
        """Take one row; the figure is updated now if the last update is old enough, else soon."""
        self.extend((row,))

    def extend(self, rows: Iterable[dict]) -> None:
        with self._lock:
            for row in rows:
                self._ingest(row)
            wait = self._last_flush + self.min_interval - time.monotonic()
            if wait <= 0:
                self._flush_locked()
            elif self._timer is None and self._dirty:
                self._timer = threading.Timer(wait, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def flush(self, *, final: bool = False) -> None:
        """Push buffered points to the figure now (``final``: also refresh the saved page state)."""
        with self._lock:
            self._flush_locked(force_state=final)

    def reset(self, rows: Iterable[dict] = ()) -> None:
        """Drop every point (e.g. before a new run), then take ``rows``; updates the figure."""
        with self._lock:
            self._dirty.update(self._points)
            for points in self._points.values():
                points.clear()
            self._switch_step = None
            for row in rows:
                self._ingest(row)
            self._flush_locked(force_state=True)

    def curve(self, mode: str, column: str = "train_loss") -> tuple[list, list]:
        """``(steps, values)`` plotted for ``mode`` (``"warmup"`` for the shared history)."""
        with self._lock:
            points = self._points.get((column, mode), {})
            return list(points), list(points.values())

    def point_counts(self, column: str | None = None) -> dict[str, int]:
        """Points per curve name in the first panel (or ``column``)."""
        column = column or self.panels[0]
        with self._lock:
            return {self._name(c): len(self._points.get((column, c), {})) for c in self._curves}

    def close(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _repr_mimebundle_(self, **kwargs):
        return self.figure._repr_mimebundle_(**kwargs)

    # ------------------------------------------------------------------ internals
    def _name(self, curve: str) -> str:
        return WARMUP_LABEL if curve == WARMUP else self.labels.get(curve, curve)

    def _ingest(self, row: dict) -> None:
        curve = WARMUP if row.get("phase") == "warmup" else row.get("mode", "none")
        if curve not in self._curves:
            self._curves.append(curve)
            if hasattr(self, "figure"):
                self._add_traces(curve)
        step = row.get("step")
        if step is None:
            return
        if curve != WARMUP and self._switch_step is None:
            self._switch_step = int(step)
        for column in self.panels:
            value = row.get(column)
            if is_finite(value):
                self._points.setdefault((column, curve), {})[int(step)] = float(value)
                self._dirty.add((column, curve))

    def _switch_marker(self) -> list[dict]:
        """A dotted vertical line at the first step of the modes (the switch), once known."""
        if self._switch_step is None:
            return []
        return [dict(type="line", xref="x", yref="paper", x0=self._switch_step, x1=self._switch_step,
                     y0=0, y1=1, line=dict(color="#555", width=1, dash="dot"))]

    @property
    def switch_step(self) -> int | None:
        """Step of the first row after the switch (``None`` before it)."""
        return self._switch_step

    def _trace_keys(self):
        return [(column, curve) for curve in self._curves for column in self.panels]

    def _trace(self, column: str, curve: str, row: int) -> go.Scatter:
        points = self._points.get((column, curve), {})
        return go.Scatter(
            x=list(points), y=list(points.values()), name=self._name(curve), mode=_line_mode(len(points)),
            line=dict(color=WARMUP_COLOR if curve == WARMUP else MODE_COLORS.get(curve), width=2),
            marker=dict(size=5),
            legendgroup=curve, showlegend=(row == 1), meta=[column, curve],
            hovertemplate="step %{x}<br>%{y:.4g}<extra>" + self._name(curve) + "</extra>",
        )

    def _build(self, height, title) -> go.Figure:
        n = len(self.panels)
        fig = make_subplots(rows=n, cols=1, shared_xaxes=True, vertical_spacing=0.08)
        for curve in self._curves:
            for r, column in enumerate(self.panels, 1):
                fig.add_trace(self._trace(column, curve, r), row=r, col=1)
        for r, column in enumerate(self.panels, 1):
            panel = PANELS[column]
            fig.update_yaxes(title_text=panel.title, type="log" if panel.log else "linear",
                             range=list(panel.range) if panel.range else None, row=r, col=1)
        fig.update_xaxes(title_text="step", row=n, col=1)
        fig.update_layout(shapes=self._switch_marker())
        fig.update_layout(height=height or 260 + 200 * n, title=title, margin=dict(l=70, r=20, t=40, b=50),
                          legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
                          uirevision="live")  # keep the reader's zoom across updates
        return fig

    def _add_traces(self, curve: str) -> None:
        for r, column in enumerate(self.panels, 1):
            self.figure.add_trace(self._trace(column, curve, r), row=r, col=1)
            self._index[(column, curve)] = len(self.figure.data) - 1

    def _flush_locked(self, force_state: bool = False) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        dirty, self._dirty = self._dirty, set()
        marker = self._switch_marker()
        if dirty or len(marker) != len(self.figure.layout.shapes):
            with self.figure.batch_update():
                if len(marker) != len(self.figure.layout.shapes):
                    self.figure.layout.shapes = marker
                for key in dirty:
                    points = self._points.get(key, {})
                    trace = self.figure.data[self._index[key]]
                    trace.x, trace.y = list(points), list(points.values())
                    trace.mode = _line_mode(len(points))
        now = time.monotonic()
        self._last_flush = now
        if force_state or (dirty and now - self._last_state_sync >= self.state_sync_s):
            sync_page_state(self.figure)
            self._last_state_sync = now


def _line_mode(n_points: int) -> str:
    """Markers while a curve has few points (a single point has no line to draw)."""
    return "lines+markers" if n_points < FEW_POINTS else "lines"


def sync_page_state(figure: go.FigureWidget) -> None:
    """Make the widget's saved state (what a page that connects later draws) match the figure.

    Plotly sends updates to open pages as one-off messages and refreshes this state only when
    the figure itself is displayed, not when it sits inside a container; we refresh it the same
    way ``FigureWidget._repr_mimebundle_`` does.
    """
    figure._widget_layout = copy.deepcopy(figure._layout_obj._props)
    figure._widget_data = copy.deepcopy(figure._data)
