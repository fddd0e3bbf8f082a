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

``headline=True`` lays the first row out as the kit's headline figure
(``experiment.figures.headline_figure``): after the switch, loss ÷ loss at the switch on a linear
axis (panel ``loss_vs_switch``), beside the whole run's loss on a log axis with readable ticks;
the other panels go below, full width.
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

from ..experiment.figures import SHARED_COLOR, SHARED_LABEL, log_ticks, relative_to_switch, tick_text

MODE_LABELS = {"none": "SGD", "dom": "Dom-SGD", "bulk": "Bulk-SGD", "interp": "Interp-SGD"}
MODE_COLORS = {"none": "#1f77b4", "dom": "#d62728", "bulk": "#2ca02c", "interp": "#9467bd"}
WARMUP = "warmup"
WARMUP_LABEL = SHARED_LABEL
WARMUP_COLOR = SHARED_COLOR
RELATIVE = "loss_vs_switch"  # derived panel: train_loss ÷ the loss at the switch, after the switch
FEW_POINTS = 30


@dataclass(frozen=True)
class Panel:
    """One subplot: the metric column it shows, its axis title and scale."""

    title: str
    log: bool = False
    range: tuple | None = None


PANELS = {
    RELATIVE: Panel("loss ÷ loss at the switch"),
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
    ``max_updates_per_s``: the most figure updates a second. ``headline``: the first row is the
    headline figure's pair (``loss_vs_switch`` beside ``train_loss``), ``panels`` go below it.
    """

    def __init__(self, rows: Iterable[dict] = (), *, modes=("none", "dom", "bulk"),
                 panels=("train_loss", "alignment_full"), labels: Mapping[str, str] | None = None,
                 max_updates_per_s: float = 4.0, state_sync_s: float = 2.0, height: int | None = None,
                 title: str | None = None, headline: bool = False):
        panels = tuple(panels)
        unknown = [p for p in panels if p not in PANELS]
        if unknown or not (panels or headline):
            raise ValueError(f"panels must be a non-empty selection of {', '.join(PANELS)}; got {list(panels)}")
        if not max_updates_per_s > 0:
            raise ValueError(f"max_updates_per_s must be > 0, got {max_updates_per_s}")
        if headline:
            panels = (RELATIVE, "train_loss", *(p for p in panels if p not in (RELATIVE, "train_loss")))
        self.headline = headline
        self.panels = panels
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
            self._dirty.update(self._trace_keys())
            for points in self._points.values():
                points.clear()
            self._switch_step = None
            for row in rows:
                self._ingest(row)
            self._flush_locked(force_state=True)

    def curve(self, mode: str, column: str = "train_loss") -> tuple[list, list]:
        """``(steps, values)`` plotted for ``mode`` (``"warmup"`` for the shared history); for
        ``loss_vs_switch`` the steps count from the switch."""
        with self._lock:
            return self._xy(column, mode)

    def point_counts(self, column: str | None = None) -> dict[str, int]:
        """Points per curve name in the loss panel (or ``column``)."""
        column = column or ("train_loss" if "train_loss" in self.panels else self.panels[0])
        with self._lock:
            return {self._name(c): len(self._xy(column, c)[0]) for c in self._curves}

    @property
    def switch_step(self) -> int | None:
        """Step of the first row after the switch (``None`` before it)."""
        return self._switch_step

    def loss_at_switch(self) -> float | None:
        """The loss the modes start from: a mode's loss at the switch step, else the last shared
        one before it (``None`` before the switch)."""
        if self._switch_step is None:
            return None
        for curve in self._curves:
            value = self._points.get(("train_loss", curve), {}).get(self._switch_step)
            if curve != WARMUP and value is not None and value > 0:
                return value
        before = [v for t, v in self._points.get(("train_loss", WARMUP), {}).items() if t <= self._switch_step]
        return before[-1] if before and before[-1] > 0 else None

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

    def _stored_columns(self) -> list[str]:
        return [c for c in self.panels if c != RELATIVE] + (["train_loss"] if RELATIVE in self.panels else [])

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
            self._dirty.update((RELATIVE, c) for c in self._curves if RELATIVE in self.panels)
        for column in self._stored_columns():
            value = row.get(column)
            if is_finite(value):
                self._points.setdefault((column, curve), {})[int(step)] = float(value)
                self._dirty.add((column, curve))
                if column == "train_loss" and RELATIVE in self.panels:
                    self._dirty.add((RELATIVE, curve))

    def _xy(self, column: str, curve: str) -> tuple[list, list]:
        if column != RELATIVE:
            points = self._points.get((column, curve), {})
            return list(points), list(points.values())
        reference = self.loss_at_switch()
        if curve == WARMUP or reference is None:
            return [], []
        points = self._points.get(("train_loss", curve), {})
        return relative_to_switch(list(points), list(points.values()), self._switch_step, reference)

    def _cell(self, column: str) -> tuple[int, int]:
        """``(row, col)`` of a panel in the subplot grid."""
        i = self.panels.index(column)
        if not self.headline:
            return i + 1, 1
        return (1, i + 1) if i < 2 else (i, 1)

    def _axes(self, column: str) -> tuple[str, str]:
        """Plotly axis names (``"x2"``, ``"y2"``) of a panel."""
        n = self.panels.index(column) + 1
        return ("x", "y") if n == 1 else (f"x{n}", f"y{n}")

    def _switch_marker(self) -> list[dict]:
        """A dotted vertical line at the switch on every panel drawn against the step, once known."""
        if self._switch_step is None:
            return []
        return [dict(type="line", xref=x, yref=f"{y} domain", x0=self._switch_step, x1=self._switch_step,
                     y0=0, y1=1, line=dict(color="#555", width=1, dash="dot"))
                for x, y in (self._axes(c) for c in self.panels if c != RELATIVE)]

    def _log_ticks(self) -> dict[str, dict]:
        """Readable ticks (1-2-5) for each log panel with data: ``{yaxis name: settings}``."""
        out = {}
        for column in self.panels:
            if not PANELS[column].log:
                continue
            values = [v for c in self._curves for v in self._points.get((column, c), {}).values() if v > 0]
            if values:
                ticks = log_ticks(min(values), max(values))
                out[self._axes(column)[1].replace("y", "yaxis", 1)] = dict(
                    tickvals=ticks, ticktext=[tick_text(t) for t in ticks])
        return out

    def _trace_keys(self):
        return [(column, curve) for curve in self._curves for column in self.panels]

    def _trace(self, column: str, curve: str) -> go.Scatter:
        x, y = self._xy(column, curve)
        # one legend entry per curve: the shared history's from the loss panel (it has no relative curve)
        first = ((column == self.panels[0] and not (self.headline and curve == WARMUP))
                 or (self.headline and column == "train_loss" and curve == WARMUP))
        return go.Scatter(
            x=x, y=y, name=self._name(curve), mode=_line_mode(len(x)),
            line=dict(color=WARMUP_COLOR if curve == WARMUP else MODE_COLORS.get(curve), width=2),
            marker=dict(size=5),
            legendgroup=curve, showlegend=first, meta=[column, curve],
            hovertemplate=("step after the switch" if column == RELATIVE else "step")
            + " %{x}<br>%{y:.4g}<extra>" + self._name(curve) + "</extra>",
        )

    def _build(self, height, title) -> go.Figure:
        n = len(self.panels)
        rows = n - 1 if self.headline else n
        if self.headline:
            specs = [[{}, {}]] + [[{"colspan": 2}, None] for _ in range(rows - 1)]
            fig = make_subplots(rows=rows, cols=2, specs=specs, vertical_spacing=0.12, horizontal_spacing=0.1)
        else:
            fig = make_subplots(rows=n, cols=1, shared_xaxes=True, vertical_spacing=0.08)
        for curve in self._curves:
            for column in self.panels:
                fig.add_trace(self._trace(column, curve), row=self._cell(column)[0], col=self._cell(column)[1])
        for column in self.panels:
            panel, (r, c) = PANELS[column], self._cell(column)
            fig.update_yaxes(title_text=panel.title, type="log" if panel.log else "linear",
                             range=list(panel.range) if panel.range else None, row=r, col=c)
            if self.headline and column != RELATIVE:
                follow = None if column == "train_loss" else self._axes("train_loss")[0]  # steps line up
                fig.update_xaxes(title_text="step", matches=follow, row=r, col=c)
        if self.headline:
            fig.update_xaxes(title_text="steps after the switch", row=1, col=1)
            fig.add_hline(y=1.0, line_dash="dot", line_color=WARMUP_COLOR, row=1, col=1)
        else:
            fig.update_xaxes(title_text="step", row=n, col=1)
        fig.update_layout(shapes=list(fig.layout.shapes) + self._switch_marker(), **self._log_ticks())
        self._fixed_shapes = len(fig.layout.shapes) - len(self._switch_marker())
        top = 70 if title else 40
        fig.update_layout(height=height or (200 + 260 * rows if self.headline else 260 + 200 * n),
                          title=dict(text=title, x=0.01, y=0.99, yanchor="top") if title else None,
                          margin=dict(l=70, r=20, t=top, b=50),
                          legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
                          uirevision="live")  # keep the reader's zoom across updates
        return fig

    def _add_traces(self, curve: str) -> None:
        for column in self.panels:
            r, c = self._cell(column)
            self.figure.add_trace(self._trace(column, curve), row=r, col=c)
            self._index[(column, curve)] = len(self.figure.data) - 1

    def _flush_locked(self, force_state: bool = False) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        dirty, self._dirty = self._dirty, set()
        marker = self._switch_marker()
        fixed = list(self.figure.layout.shapes)[:self._fixed_shapes]
        new_marker = len(marker) != len(self.figure.layout.shapes) - self._fixed_shapes
        if dirty or new_marker:
            with self.figure.batch_update():
                if new_marker:
                    self.figure.layout.shapes = fixed + marker
                for key in dirty:
                    x, y = self._xy(*key)
                    trace = self.figure.data[self._index[key]]
                    trace.x, trace.y = x, y
                    trace.mode = _line_mode(len(x))
                self.figure.update_layout(**self._log_ticks())
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
