"""Run/Stop panels and plots for notebooks 05–12: toy problems drawn live, cached MLP runs.

- ``ToyCurves``: a figure for toy runs (optionally an (x, y) plane with contours and paths,
  plus one panel per metric), with the interface ``RunPanel`` drives (``reset``, ``add``,
  ``flush``, ``point_counts``, ``figure``).
- ``valley_panel``, ``quadratic_panel``, ``eos_panel``: sliders + Run/Stop around the toys of
  ``subspace_kit.theory``; each run simulates in one go (about a second at most) and then streams
  the rows so the paths are drawn step by step (``animate_s`` seconds in all; 0 in headless runs).
  Moving a slider redraws at once, without a Run click (``LiveRedraw``, debounced).
- Log axes are framed on the plotted data (``log_range``) and guide lines are placed in data
  units; 05's path panel is framed on SGD's bouncing (``sgd_frame``).
- ``CachedSource`` / ``cached_panel``: a ``RunPanel`` over one shipped run (``experiment.shipped``)
  with a few of its fields as controls; the cached result is on the figure when it opens.
- ``overlay``: curves of several stored runs on shared axes (e.g. the two projection
  placements of momentum).
"""
from __future__ import annotations

import math
import threading
import time
from typing import Iterator, Mapping, Sequence

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .live_curves import LiveCurves, is_finite, sync_page_state
from .run_panel import RunPanel
from .sources import EngineSource

COLORS = {"gd": "#ff7f0e", "none": "#1f77b4", "sgd": "#1f77b4", "dom": "#d62728", "bulk": "#2ca02c",
          "interp": "#9467bd", "warmup": "#7f7f7f"}
LEGEND_MARGIN_PX = 70  # room for a legend of up to two rows above the panels
TOY_LABELS = {"warmup": "SGD before the switch", "gd": "GD (from the start)", "none": "SGD",
              "dom": "Dom-SGD", "bulk": "Bulk-SGD"}


def log_range(values: Sequence[float], *, pad_decades: float = 0.15, max_decades: float = 12.0) -> list[float]:
    """A plotly log-axis range (log10 units) around the positive ``values``: their extent plus
    ``pad_decades`` each side, at most ``max_decades`` below the largest (a curve that underflows
    towards 0 would otherwise squash all the others into the top of the panel)."""
    logs = [math.log10(v) for v in values if is_finite(v) and v > 0]
    if not logs:
        raise ValueError("values must hold at least one positive finite number")
    hi = max(logs)
    lo = max(min(logs), hi - max_decades)
    return [lo - pad_decades, hi + pad_decades]


def sgd_frame(rows: Sequence[dict], *, modes=("warmup", "none", "dom", "bulk"), skip: int = 20,
              margin: float = 1.25) -> float:
    """Half-width of the x-range that shows SGD's bouncing across the valley: the largest |x| of
    the stochastic paths after their first ``skip`` logged points (the descent from the start),
    times ``margin``. GD's start is then outside the frame, as it should be: it is not the story."""
    xs = [abs(r["x"]) for m in modes for i, r in enumerate(r for r in rows if r["mode"] == m)
          if (m != "warmup" or i >= skip) and is_finite(r.get("x"))]
    return max(max(xs, default=0.0), 1e-3) * margin


# ---------------------------------------------------------------------------- the toy figure
class ToyCurves:
    """Paths in a plane (optional) and metric panels, fed with rows by a ``RunPanel``.

    Rows: ``{"mode", "step", <metric columns>}`` and, with a plane, ``"x"``, ``"y"``.
    ``metrics``: ``[(column, title, log_axis), ...]`` one panel each. ``labels``/``colors``:
    per mode. ``plane``: axis titles ``(x_title, y_title)`` or ``None``.
    """

    def __init__(self, metrics: Sequence[tuple[str, str, bool]], *, modes: Sequence[str],
                 labels: Mapping[str, str] | None = None, colors: Mapping[str, str] | None = None,
                 plane: tuple[str, str] | None = None, height: int = 470, max_updates_per_s: float = 5.0):
        self.metrics, self.modes, self.plane = list(metrics), list(modes), plane
        self.labels = {**TOY_LABELS, **(labels or {})}
        self.colors = {**COLORS, **(colors or {})}
        self.min_interval = 1.0 / max_updates_per_s
        self._lock = threading.RLock()
        self._points = {m: {"step": []} for m in self.modes}
        self._last_flush = 0.0
        self._guides: dict[str, float] = {}
        n = len(self.metrics)
        if plane:
            specs = [[{"rowspan": n}, {}]] + [[None, {}] for _ in range(n - 1)]
            fig = make_subplots(rows=n, cols=2, specs=specs, column_widths=[0.42, 0.58],
                                horizontal_spacing=0.09, vertical_spacing=0.09)
        else:
            fig = make_subplots(rows=n, cols=1, shared_xaxes=True, vertical_spacing=0.09)
        col = 2 if plane else 1
        self._col = col
        self._trace = {}
        if plane:
            fig.add_trace(go.Contour(z=[[0, 0], [0, 0]], x=[0, 1], y=[0, 1], showscale=False, ncontours=25,
                                     colorscale="Greys", reversescale=True, opacity=0.45, hoverinfo="skip",
                                     contours=dict(coloring="lines"), name="loss contours", showlegend=False),
                          row=1, col=1)
            self._trace["plane"] = len(fig.data) - 1
            for m in self.modes:
                fig.add_trace(go.Scatter(x=[], y=[], mode="lines+markers", marker=dict(size=3),
                                         line=dict(color=self.colors.get(m), width=1.5), name=self.labels.get(m, m),
                                         legendgroup=m, showlegend=False), row=1, col=1)
                self._trace[("xy", m)] = len(fig.data) - 1
            fig.update_xaxes(title_text=plane[0], row=1, col=1)
            fig.update_yaxes(title_text=plane[1], row=1, col=1)
        for r, (column, title, log) in enumerate(self.metrics, 1):
            for m in self.modes:
                fig.add_trace(go.Scatter(x=[], y=[], mode="lines", line=dict(color=self.colors.get(m), width=2),
                                         name=self.labels.get(m, m), legendgroup=m, showlegend=(r == 1)),
                              row=r, col=col)
                self._trace[(column, m)] = len(fig.data) - 1
            fig.update_yaxes(title_text=title, type="log" if log else "linear", row=r, col=col)
        fig.update_xaxes(title_text="step", row=n, col=col)
        # The horizontal legend sits in the top margin, above every panel (no titles there).
        fig.update_layout(height=height, margin=dict(l=60, r=20, t=LEGEND_MARGIN_PX, b=45), uirevision="toy",
                          legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))
        self.figure = go.FigureWidget(fig)

    # ------------------------------------------------------------------ what RunPanel calls
    def reset(self, rows=()) -> None:
        with self._lock:
            self._points = {m: {"step": []} for m in self.modes}
            for row in rows:
                self._ingest(row)
            self._push(final=True)

    def add(self, row: dict) -> None:
        with self._lock:
            self._ingest(row)
            if time.monotonic() - self._last_flush >= self.min_interval:
                self._push()

    def extend(self, rows) -> None:
        with self._lock:
            for row in rows:
                self._ingest(row)
            self._push()

    def flush(self, *, final: bool = False) -> None:
        with self._lock:
            self._push(final=final)

    def point_counts(self, column: str | None = None) -> dict[str, int]:
        with self._lock:
            return {self.labels.get(m, m): len(p["step"]) for m, p in self._points.items() if p["step"]}

    def curve(self, mode: str, column: str) -> tuple[list, list]:
        """``(steps, values)`` received for ``mode`` (for checks and exercises)."""
        with self._lock:
            p = self._points.get(mode, {"step": []})
            return list(p["step"]), list(p.get(column, []))

    def _repr_mimebundle_(self, **kwargs):
        return self.figure._repr_mimebundle_(**kwargs)

    # ------------------------------------------------------------------ background and guides
    def set_plane(self, xs, ys, z) -> None:
        """Contours of the loss on the grid ``xs`` × ``ys`` (``z`` has shape (len(ys), len(xs)))."""
        with self.figure.batch_update():
            t = self.figure.data[self._trace["plane"]]
            t.x, t.y, t.z = list(map(float, xs)), list(map(float, ys)), np.asarray(z).tolist()
            self.figure.layout.xaxis.range = [float(xs[0]), float(xs[-1])]
            self.figure.layout.yaxis.range = [float(ys[0]), float(ys[-1])]

    def set_guides(self, guides: Mapping[str, tuple[float, str]]) -> None:
        """Dashed horizontal lines: ``{column: (value, label)}`` on the metric panels.

        ``value`` is in data units. Plotly places shapes in data units on every axis but
        annotations in log10 units on a log axis, so only the label's height is converted.
        """
        shapes, notes = [], []
        self._guides = {}
        for r, (column, _, log) in enumerate(self.metrics, 1):
            if column not in guides or not is_finite(guides[column][0]):
                continue
            value, label = guides[column]
            if log and value <= 0:  # a log axis cannot show it
                continue
            self._guides[column] = float(value)
            axis = self._axis_suffix(r)
            note_y = math.log10(value) if log else value
            shapes.append(dict(type="line", xref=f"x{axis} domain", yref=f"y{axis}", x0=0, x1=1, y0=value,
                               y1=value, line=dict(color="#444", dash="dash", width=1)))
            notes.append(dict(xref=f"x{axis} domain", yref=f"y{axis}", x=1, y=note_y, text=label, showarrow=False,
                              xanchor="right", yanchor="bottom", font=dict(size=11, color="#444")))
        with self.figure.batch_update():
            self.figure.layout.shapes, self.figure.layout.annotations = shapes, notes
            self._fit_log_axes()

    def _axis_suffix(self, r: int) -> str:
        index = self._axis_index(r)
        return "" if index == 1 else str(index)

    def _fit_log_axes(self) -> None:
        """Frame every log panel on its plotted values and guides (plotly's log ranges are in
        log10 units): a stray point cannot stretch the axis over dozens of empty decades."""
        for r, (column, _, log) in enumerate(self.metrics, 1):
            if not log:
                continue
            values = [float(v) for p in self._points.values() for v in p.get(column, ())
                      if is_finite(v) and float(v) > 0]
            if column in self._guides:
                values.append(self._guides[column])
            axis = self.figure.layout[f"yaxis{self._axis_suffix(r)}"]
            axis.range = log_range(values) if values else None

    def _axis_index(self, r: int) -> int:
        # plane occupies axis 1; metric panel r is axis r+1 with a plane, else r
        return r + 1 if self.plane else r

    # ------------------------------------------------------------------ internals
    def _ingest(self, row: dict) -> None:
        m = row.get("mode")
        if m not in self._points:
            return
        p = self._points[m]
        p["step"].append(row["step"])
        for key in ("x", "y", *(c for c, _, _ in self.metrics)):
            p.setdefault(key, []).append(row.get(key, math.nan))

    def _push(self, final: bool = False) -> None:
        with self.figure.batch_update():
            for m, p in self._points.items():
                if self.plane:
                    t = self.figure.data[self._trace[("xy", m)]]
                    t.x, t.y = p.get("x", []), p.get("y", [])
                for column, _, _ in self.metrics:
                    t = self.figure.data[self._trace[(column, m)]]
                    pts = [(s, v) for s, v in zip(p["step"], p.get(column, [])) if is_finite(v)]
                    t.x, t.y = [s for s, _ in pts], [v for _, v in pts]
            self._fit_log_axes()
        self._last_flush = time.monotonic()
        if final:
            sync_page_state(self.figure)


def stream_rows(rows: Sequence[dict], stop: threading.Event, *, animate_s: float) -> Iterator[dict]:
    """Yield ``rows`` in order, spread over about ``animate_s`` seconds, until ``stop`` is set."""
    pause = animate_s / max(1, len(rows)) if animate_s > 0 else 0.0
    batch = max(1, int(0.02 / pause)) if pause else len(rows) + 1
    for i, row in enumerate(rows):
        if stop.is_set():
            return {"status": "stopped", "message": f"stopped at step {row['step']}"}
        if pause and i % batch == 0:
            time.sleep(pause * batch)
        yield row
    return {"status": "completed", "message": ""}


def _trajectory_rows(mode: str, tr, *, offset: int = 0, every: int = 1, plane: bool = True,
                     extra: Mapping[str, np.ndarray] | None = None) -> list[dict]:
    rows = []
    for t in range(0, len(tr.loss), every):
        row = {"mode": mode, "step": offset + t, "train_loss": float(np.mean(tr.loss[t])),
               "alignment_full": float(tr.alignment[t])}
        if plane:
            row["x"], row["y"] = float(tr.path[t, 0]), float(tr.path[t, 1])
        for key, values in (extra or {}).items():
            row[key] = float(values[t])
        rows.append(row)
    return rows


def _interleave(groups: Sequence[list[dict]]) -> list[dict]:
    return sorted((r for g in groups for r in g), key=lambda r: r["step"])


def _slider(cls, value, lo, hi, step, description, **kw):
    w = cls(value=value, min=lo, max=hi, step=step, description=description, continuous_update=False,
            style={"description_width": "initial"}, layout=widgets.Layout(width="auto"), **kw)
    return w


ANIMATE_KEY = "animate_s"  # a setting a redraw may add: seconds to spread the drawing over


class LiveRedraw:
    """Redraw a toy panel when one of its sliders moves, without a Run click.

    Changes are debounced: a run starts ``delay_s`` after the last change (dragging across
    several values runs once), drawn at once (no animation). A run still drawing is stopped
    first. ``count`` says how many redraws were started (for tests).
    """

    def __init__(self, panel: RunPanel, *, delay_s: float = 0.3):
        self.panel, self.delay_s, self.count = panel, delay_s, 0
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        for w in panel.controls.values():
            w.observe(self._changed, names="value")

    def _changed(self, _change=None) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.delay_s, self._redraw)
            self._timer.daemon = True
            self._timer.start()

    def _redraw(self) -> None:
        if self.panel.running:
            self.panel.stop()
            self.panel.wait(5)
        if self.panel.start({**self.panel.settings(), ANIMATE_KEY: 0.0}):
            self.count += 1

    def wait(self, timeout: float = 10.0) -> bool:
        """Wait for a pending redraw to start and finish; ``True`` if none is left."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            timer = self._timer
            if timer is not None and timer.is_alive():
                time.sleep(0.02)
                continue
            return self.panel.wait(max(0.0, deadline - time.monotonic()))
        return False


# ---------------------------------------------------------------------------- 05: the valley
def valley_rows(settings: dict) -> tuple[list[dict], dict]:
    """Rows of the valley experiment for ``settings`` (a, b, c, lr, warmup, steps, seed, x0, y0):
    GD from the start; SGD for ``warmup`` steps; then SGD, Dom-SGD and Bulk-SGD from SGD's point.
    Also returns the switch point and the exact loss floors of the three modes from it."""
    from ..theory import Valley

    v = Valley(a=settings["a"], b=settings["b"], c=settings["c"])
    lr, warm, steps, seed = settings["lr"], int(settings["warmup"]), int(settings["steps"]), int(settings.get("seed", 0))
    start = (settings.get("x0", 0.5), settings.get("y0", 1.0))
    every = max(1, (warm + steps) // 600)
    gd = v.simulate("gd", lr=lr, steps=warm + steps, start=start)
    phase1 = v.simulate("sgd", lr=lr, steps=warm, start=start, seed=seed)
    switch = tuple(phase1.path[-1])
    groups = [_trajectory_rows("gd", gd, every=every), _trajectory_rows("warmup", phase1, every=every)]
    floors = {}
    for mode, method in (("none", "sgd"), ("dom", "dom_sgd"), ("bulk", "bulk_sgd")):
        tr = v.simulate(method, lr=lr, steps=steps, start=switch, seed=seed + 1)
        groups.append(_trajectory_rows(mode, tr, offset=warm, every=every))
        floors[mode] = v.loss_floor(method, lr=lr, start=switch)
    return _interleave(groups), {"switch": switch, "floors": floors, "valley": v}


def valley_panel(*, a: float = 1.0, b: float = 0.002, c: float = 0.03, lr: float = 0.5, warmup: int = 300,
                 steps: int = 1500, seed: int = 0, animate_s: float = 4.0, live: bool = True) -> RunPanel:
    """Sliders for the curvatures a, b, the noise c and η (kept below 2/a); Run draws GD and
    SGD from (0.5, 1), then SGD / Dom-SGD / Bulk-SGD from SGD's point after ``warmup`` steps.
    The path panel is framed on SGD's bouncing (GD's start lies outside it). ``live``: moving a
    slider redraws at once (``LiveRedraw``), without animation."""
    controls = {
        "a": _slider(widgets.FloatSlider, a, 0.2, 2.0, 0.05, "sharp curvature a"),
        "b": _slider(widgets.FloatLogSlider, b, -4, -1, 0.1, "flat curvature b", base=10),
        "c": _slider(widgets.FloatSlider, c, 0.0, 0.1, 0.005, "noise c"),
        "lr": _slider(widgets.FloatSlider, lr, 0.05, 1.9 / a, 0.05, "step η"),
        "warmup": _slider(widgets.IntSlider, warmup, 0, 2000, 50, "SGD steps before the switch"),
        "steps": _slider(widgets.IntSlider, steps, 10, 5000, 10, "steps after the switch"),
    }

    def bound_lr(change):  # stable only for η a < 2
        controls["lr"].max = 1.9 / change["new"]

    controls["a"].observe(bound_lr, names="value")
    curves = ToyCurves([("train_loss", "loss L(x, y)", True), ("alignment_full", "alignment χ₁(∇L)", False)],
                       modes=["gd", "warmup", "none", "dom", "bulk"], plane=("x (sharp)", "y (flat)"))

    def make_rows(settings, stop):
        animate = settings.pop(ANIMATE_KEY, animate_s)
        rows, info = valley_rows({**settings, "seed": seed})
        v = info["valley"]
        hx = sgd_frame(rows)
        ys_all = [r["y"] for r in rows if is_finite(r["y"])]
        ys = np.linspace(min(min(ys_all), 0.0) - 0.05, max(ys_all) + 0.05, 80)
        xs = np.linspace(-hx, hx, 80)
        curves.set_plane(xs, ys, v.loss(np.stack(np.meshgrid(xs, ys), axis=-1)))
        f = info["floors"]["dom"]
        curves.set_guides({"train_loss": (f, f"Dom-SGD floor {f:.3g} (exact)")})
        return (yield from stream_rows(rows, stop, animate_s=animate))

    panel = RunPanel(make_rows, controls, curves)
    if live:
        panel.live = LiveRedraw(panel)
    return panel


# ---------------------------------------------------------------------------- 06: noisy quadratic
def quadratic_problem(settings: dict):
    """The ``NoisyQuadratic`` of ``settings``: k sharp curvatures ``sharp`` (equal), ``flat_count``
    flat ones spread log-uniformly over [``flat_max``/100, ``flat_max``], noise s."""
    from ..theory import NoisyQuadratic

    k, n_flat = int(settings["k"]), int(settings["flat_count"])
    sharp = np.full(k, float(settings["sharp"]))
    flat = np.geomspace(settings["flat_max"] / 100, settings["flat_max"], n_flat)
    return NoisyQuadratic(sharp, flat, noise=settings["noise"])


def quadratic_start(q, start_flat: float = 1.0) -> np.ndarray:
    """The start point: 1 in the sharp coordinates, ``start_flat`` in the flat ones."""
    return np.concatenate([np.ones(q.k), np.full(len(q.flat), float(start_flat))])


def quadratic_rows(settings: dict, *, chains: int = 20) -> tuple[list[dict], dict]:
    """GD and SGD from ``quadratic_start(q, settings["start_flat"])``; after ``warmup`` SGD steps, SGD / Dom-SGD / Bulk-SGD from SGD's
    point (``chains`` chains each, loss averaged). Also returns the exact floors from there."""
    q = quadratic_problem(settings)
    lr, warm, steps, seed = settings["lr"], int(settings["warmup"]), int(settings["steps"]), int(settings.get("seed", 0))
    every = max(1, (warm + steps) // 400)
    start = quadratic_start(q, settings.get("start_flat", 1.0))
    gd = q.simulate("gd", lr=lr, steps=warm + steps, start=start)
    phase1 = q.simulate("sgd", lr=lr, steps=warm, start=start, seed=seed)
    switch = phase1.path[-1]
    groups = [_trajectory_rows("gd", gd, every=every, plane=False),
              _trajectory_rows("warmup", phase1, every=every, plane=False)]
    floors = {}
    for mode, method in (("none", "sgd"), ("dom", "dom_sgd"), ("bulk", "bulk_sgd")):
        tr = q.simulate(method, lr=lr, steps=steps, start=switch, chains=chains, seed=seed + 1)
        groups.append(_trajectory_rows(mode, tr, offset=warm, every=every, plane=False))
        floors[mode] = q.loss_floor(method, lr=lr, start=switch)
    return _interleave(groups), {"switch": switch, "floors": floors, "problem": q}


def quadratic_panel(*, k: int = 3, sharp: float = 20.0, flat_max: float = 1.0, flat_count: int = 47,
                    noise: float = 1.0, lr: float = 0.05, warmup: int = 500, steps: int = 1500, seed: int = 0,
                    start_flat: float = 1.0, animate_s: float = 4.0, live: bool = True) -> RunPanel:
    """Sliders for the sharp curvature, the largest flat one, the noise and η (below 2/λ);
    ``live``: moving a slider redraws at once (``LiveRedraw``)."""
    controls = {
        "sharp": _slider(widgets.FloatSlider, sharp, 2.0, 40.0, 1.0, "sharp curvature λ"),
        "flat_max": _slider(widgets.FloatLogSlider, flat_max, -2, 0.3, 0.1, "largest flat curvature μ", base=10),
        "noise": _slider(widgets.FloatSlider, noise, 0.0, 3.0, 0.1, "noise s"),
        "lr": _slider(widgets.FloatSlider, lr, 0.005, 1.9 / sharp, 0.005, "step η"),
        "warmup": _slider(widgets.IntSlider, warmup, 0, 3000, 50, "SGD steps before the switch"),
        "steps": _slider(widgets.IntSlider, steps, 10, 5000, 10, "steps after the switch"),
    }

    def bound_lr(change):
        controls["lr"].max = 1.9 / change["new"]

    controls["sharp"].observe(bound_lr, names="value")
    curves = ToyCurves([("train_loss", "loss (mean of 20 chains)", True), ("alignment_full", "alignment χₖ(∇L)", False)],
                       modes=["gd", "warmup", "none", "dom", "bulk"], height=520)

    def make_rows(settings, stop):
        animate = settings.pop(ANIMATE_KEY, animate_s)
        rows, info = quadratic_rows({**settings, "k": k, "flat_count": flat_count, "seed": seed,
                                     "start_flat": start_flat})
        f = info["floors"]
        curves.set_guides({"train_loss": (f["dom"], f"Dom-SGD floor {f['dom']:.3g} (exact)")})
        return (yield from stream_rows(rows, stop, animate_s=animate))

    panel = RunPanel(make_rows, controls, curves)
    if live:
        panel.live = LiveRedraw(panel)
    return panel


# ---------------------------------------------------------------------------- 08: self-stabilization
def eos_max_target(lr: float, s0: float, margin: float = 0.49) -> float:
    """Largest y* for which GD's edge orbit still attracts: η (y* − y_edge) < ½, y_edge = 2/η − s₀."""
    return 2.0 / lr - s0 + margin / lr


def eos_panel(*, lr: float = 1.0, target: float = 1.8, s0: float = 0.5, flat: float = 0.1, steps: int = 300,
              animate_s: float = 4.0, live: bool = True) -> RunPanel:
    """GD on ``SelfStabilization``: sliders for η and y* (y* kept where the orbit is stable);
    the (x, y) path over the loss contours, sharpness against 2/η, χ₁ and the loss.
    ``live``: moving a slider redraws at once (``LiveRedraw``)."""
    from ..theory import SelfStabilization, simulate_eos

    controls = {
        "lr": _slider(widgets.FloatSlider, lr, 0.6, 1.6, 0.05, "step η"),
        "target": _slider(widgets.FloatSlider, target, 0.0, round(eos_max_target(lr, s0), 2), 0.01,
                          "y* (minimum along y)"),
        "steps": _slider(widgets.IntSlider, steps, 20, 2000, 10, "steps"),
    }

    def bound_target(change):
        controls["target"].max = round(eos_max_target(change["new"], s0), 2)

    controls["lr"].observe(bound_target, names="value")
    curves = ToyCurves([("sharpness", "sharpness λ₁", False), ("alignment_full", "alignment χ₁(∇L)", False),
                        ("train_loss", "loss", True)], modes=["gd"], labels={"gd": "GD"},
                       plane=("x (top eigenvector)", "y (sharpening direction)"), height=560)

    def make_rows(settings, stop):
        animate = settings.pop(ANIMATE_KEY, animate_s)
        model = SelfStabilization(s0=s0, flat=flat, target=settings["target"])
        run = simulate_eos(model, lr=settings["lr"], steps=int(settings["steps"]))
        ok = np.isfinite(run.loss)
        rows = [{"mode": "gd", "step": t, "x": float(run.path[t, 0]), "y": float(run.path[t, 1]),
                 "train_loss": float(run.loss[t]), "sharpness": float(run.sharpness[t]),
                 "alignment_full": float(run.alignment[t])} for t in np.flatnonzero(ok)]
        xs_ = run.path[ok, 0]
        hx = max(float(np.abs(xs_).max()), 0.05) * 1.15
        ys = np.linspace(min(float(run.path[ok, 1].min()), 0.0) - 0.1, max(float(run.path[ok, 1].max()), model.target) + 0.1, 80)
        xs = np.linspace(-hx, hx, 80)
        z = np.array([[model.loss((x, y)) for x in xs] for y in ys])
        curves.set_plane(xs, ys, np.log10(z + 1e-6))
        curves.set_guides({"sharpness": (2.0 / settings["lr"], "2/η")})
        return (yield from stream_rows(rows, stop, animate_s=animate))

    panel = RunPanel(make_rows, controls, curves)
    if live:
        panel.live = LiveRedraw(panel)
    return panel


# ---------------------------------------------------------------------------- MLP: cached runs
class CachedSource(EngineSource):
    """A row source over ``base`` (a ``RunConfig``) with ``fields`` as settings: runs already in
    ``store`` (default: the user's run store) or the shipped runs are read back, others run with
    the engine into ``store``."""

    def __init__(self, base, store=None, fields=()):
        self.base, self.store, self.fields = base, store, tuple(fields)

    def config(self, settings: dict):
        return self.base.replace(**settings)

    def defaults(self) -> dict:
        return {name: getattr(self.base, name) for name in self.fields}

    def _found(self, settings):
        from ..experiment.shipped import find
        from ..paths import shipped_runs, user_store

        return find(self.config(settings), [self.store or user_store(), shipped_runs()])

    def cached_rows(self, settings: dict) -> list[dict]:
        try:
            found = self._found(settings)
        except ValueError:
            return []
        return list(found.rows) if found is not None else []

    def make_rows(self, settings: dict, stop: threading.Event):
        found = self._found(settings)
        if found is not None:
            yield from found.rows
            return {"status": found.status, "message": found.summary.get("message", "")}
        return (yield from super().make_rows(settings, stop))


def cached_panel(base, controls: Mapping[str, widgets.ValueWidget], *, store=None,
                 panels=("train_loss", "alignment_full"), modes=None) -> RunPanel:
    """A ``RunPanel`` for ``base`` whose ``controls`` (named after ``RunConfig`` fields) override
    it; opens with the stored run of the controls' starting values, if any."""
    source = CachedSource(base, store=store, fields=controls)
    labels = {m: base.label(m) for m in ("none", "dom", "bulk", "interp")}
    labels["interp"] = f"Interp-{base.label('none')}"
    start = {name: w.value for name, w in controls.items()}
    curves = LiveCurves(source.cached_rows(start), modes=modes or base.modes, panels=panels, labels=labels)
    return RunPanel(source.make_rows, dict(controls), curves)


def overlay(curves: Sequence[tuple[str, object, str, object]], columns: Sequence[tuple[str, str, bool]], *,
            title: str | None = None, height: int = 340, switch: int | None = None) -> go.Figure:
    """Plot stored curves side by side: ``curves`` is ``[(label, rows, mode, color), ...]`` with
    ``rows`` a ``RunResult`` or a list of metric rows, ``color`` a colour or a dict of line
    properties (e.g. ``{"color": "red", "dash": "dot"}``), mode ``"warmup"`` for the phase before the
    switch alone and ``"all:<mode>"`` for phase 1 followed by ``<mode>``; ``columns``
    ``[(column, title, log), ...]`` one panel each. Non-finite values are skipped."""
    fig = make_subplots(rows=1, cols=len(columns), subplot_titles=[t for _, t, _ in columns],
                        horizontal_spacing=0.07)
    for label, result, mode, color in curves:
        rows = result.rows if hasattr(result, "rows") else result
        whole, mode = (True, mode[4:]) if mode.startswith("all:") else (False, mode)
        for c, (column, _, _) in enumerate(columns, 1):
            if mode == "warmup":
                pts = [(r["step"], r.get(column)) for r in rows if r["phase"] == "warmup"]
            else:
                pts = [(r["step"], r.get(column)) for r in rows
                       if (r["phase"] == "main" and r["mode"] == mode) or (whole and r["phase"] == "warmup")]
            pts = [(s, v) for s, v in pts if is_finite(v)]
            line = dict(color) if isinstance(color, Mapping) else dict(color=color)
            fig.add_scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines", name=label,
                            legendgroup=label, showlegend=(c == 1), line=line, row=1, col=c)
    for c, (_, _, log) in enumerate(columns, 1):
        if log:
            fig.update_yaxes(type="log", row=1, col=c)
        if switch is not None:
            fig.add_vline(x=switch, line_dash="dot", line_color="gray", row=1, col=c)
    fig.update_xaxes(title_text="step")
    # Title and subplot titles own the top margin; the legend goes below the x-axis titles.
    fig.update_layout(height=height + 50, title=title, margin=dict(t=70 if title else 40, b=100, l=60, r=20),
                      legend=dict(orientation="h", yanchor="top", y=-0.22, x=0))
    return fig


# ---------------------------------------------------------------------------- MLP: continuations
def continuation_panel(cfg, *, at: int, names=("sgd", "gd"), steps: int = 200, measure_every: int = 10,
                       refresh_every: int = 20, covariance_batches: int = 0, history: Sequence[dict] = (),
                       panels=("train_loss", "alignment_full"), start=None) -> RunPanel:
    """Run/Stop for ``subspace_kit.experiment.continuation.continue_from``: the model of ``cfg``'s phase 1 at step
    ``at`` continued as each of ``names`` (``"sgd"``, ``"gd"``, ``"bulk_hessian"``,
    ``"bulk_covariance"``). ``history``: rows drawn first (e.g. the cached run's phase 1 up to
    ``at``); ``start``: ``(problem, model)`` at step ``at`` if you have it (else phase 1 is
    replayed). The controls are the number of steps and the measuring cadence."""
    from ..experiment.continuation import CONTINUATION_LABELS, continue_from, snapshots
    from ..threads import engine_threads

    controls = {"steps": _slider(widgets.IntSlider, steps, 10, 2000, 10, "steps after the switch"),
                "measure_every": _slider(widgets.IntSlider, measure_every, 1, 100, 1, "measure every")}
    history = [r for r in history if r["step"] <= at]
    curves = LiveCurves(history, modes=names, panels=panels, labels=CONTINUATION_LABELS)
    for name, color in (("sgd", COLORS["none"]), ("gd", COLORS["gd"]), ("bulk_hessian", COLORS["bulk"]),
                        ("bulk_covariance", COLORS["interp"])):
        for trace in curves.figure.data:
            if trace.meta and trace.meta[1] == name:
                trace.line.color = color

    def make_rows(settings, stop):
        yield from history
        with engine_threads():
            problem, model = start if start is not None else next(iter(snapshots(cfg, [at])))[1:]
            for row in continue_from(problem, model, names, steps=int(settings["steps"]), start_step=at,
                                     measure_every=int(settings["measure_every"]), refresh_every=refresh_every,
                                     covariance_batches=covariance_batches):
                if stop.is_set():
                    return {"status": "stopped", "message": f"stopped at step {row['step']}"}
                yield row
        return {"status": "completed", "message": ""}

    return RunPanel(make_rows, controls, curves)
