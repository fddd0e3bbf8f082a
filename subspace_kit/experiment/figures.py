"""Figures of a stored run: the paper's Figure 1a-style panels (plotly, and matplotlib for PNG).

``figure(result)`` is the interactive plotly figure; ``save_png`` draws the same panels with
matplotlib, so a report needs no browser.
"""
from __future__ import annotations

import math

from .results import RunResult

COLORS = {"none": "#1f77b4", "dom": "#d62728", "bulk": "#2ca02c", "interp": "#9467bd"}


def figure(result: RunResult):
    """Plotly figure: loss (log), alignment χ_k(∇L), sharpness λ1 beside 2/η."""
    from plotly.subplots import make_subplots

    cfg = result.config
    fig = make_subplots(rows=1, cols=3, subplot_titles=(
        "training loss (log scale)", f"alignment χ_{cfg.k}(∇L)", "sharpness λ1 and 2/η"))
    for mode in cfg.modes:
        for col, column in ((1, "train_loss"), (2, "alignment_full"), (3, "sharpness")):
            steps, values = result.curve(mode, column)
            pts = [(s, v) for s, v in zip(steps, values) if isinstance(v, (int, float)) and math.isfinite(v)]
            fig.add_scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines", name=cfg.label(mode),
                            legendgroup=mode, showlegend=col == 1, line=dict(color=COLORS[mode]), row=1, col=col)
    fig.add_hline(y=2 / cfg.lr, line_dash="dot", annotation_text="2/η", row=1, col=3)
    switch = result.switch_step
    if switch is not None:
        for col in (1, 2, 3):
            fig.add_vline(x=switch, line_dash="dash", line_color="gray", row=1, col=col)
    losses = [v for mode in cfg.modes for v in _finite_points(*result.curve(mode))[1] if v > 0]
    ticks = log_ticks(min(losses), max(losses)) if losses else None
    fig.update_yaxes(type="log", tickvals=ticks, ticktext=[tick_text(t) for t in ticks] if ticks else None,
                     row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_xaxes(title_text="step")
    fig.update_layout(height=380, width=1150, margin=dict(t=40, b=40),
                      title=f"{cfg.dataset}, {cfg.model}, η={cfg.lr}, batch {cfg.batch_size}, k={cfg.k}, "
                            f"refresh every {cfg.refresh_every} (switch at step {switch})")
    return fig


def save_png(result: RunResult, path) -> None:
    """The same three panels with matplotlib (no browser needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = result.config
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for mode in cfg.modes:
        for ax, column in zip(axes, ("train_loss", "alignment_full", "sharpness")):
            steps, values = result.curve(mode, column)
            pts = [(s, v) for s, v in zip(steps, values) if isinstance(v, (int, float)) and math.isfinite(v)]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color=COLORS[mode], label=cfg.label(mode))
    axes[0].set_yscale("log")
    losses = [v for line in axes[0].get_lines() for v in line.get_ydata() if v > 0]
    if losses:
        from matplotlib.ticker import FixedLocator, NullLocator

        ticks = log_ticks(min(losses), max(losses))
        axes[0].yaxis.set_major_locator(FixedLocator(ticks))
        axes[0].yaxis.set_minor_locator(NullLocator())
        axes[0].set_yticklabels([tick_text(t) for t in ticks])
    axes[0].set_title("training loss (log scale)")
    axes[1].set_title(f"alignment χ_{cfg.k}(∇L)")
    axes[1].set_ylim(0, 1.02)
    axes[2].axhline(2 / cfg.lr, ls=":", color="k", label="2/η")
    axes[2].set_title("sharpness λ1")
    switch = result.switch_step
    for ax in axes:
        if switch is not None:
            ax.axvline(switch, ls="--", color="gray")
        ax.set_xlabel("step")
    axes[0].legend()
    fig.suptitle(f"{cfg.dataset}, {cfg.model}, η={cfg.lr}, batch {cfg.batch_size}, k={cfg.k}, "
                 f"refresh every {cfg.refresh_every}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------- the headline figure
# After the switch: loss ÷ loss at the switch on a linear axis (where the split is), beside the
# whole run on a log axis. The same layout serves notebooks 01 and 04, the dashboard's live plot,
# the README image and the report's slide-ready PNG/SVG.
SHARED_COLOR = "#8c8c8c"   # the shared history before the switch: neutral grey, not a mode's colour
SHARED_LABEL = "SGD before the switch (shared)"
RELATIVE_TITLE = "after the switch: loss ÷ loss at the switch"
HISTORY_TITLE = "whole run: training loss (log scale)"


def _finite_points(steps, values) -> tuple[list, list]:
    pts = [(s, float(v)) for s, v in zip(steps, values)
           if isinstance(v, (int, float)) and math.isfinite(v)]
    return [p[0] for p in pts], [p[1] for p in pts]


def relative_to_switch(steps, values, switch: int, reference: float) -> tuple[list, list]:
    """``(steps after the switch, value ÷ reference)`` for the points at or after ``switch``.

    ``steps`` and ``values`` are one curve (non-finite values are dropped); ``reference`` is the
    loss at the switch (> 0). The first returned step is 0 at the switch itself.
    """
    if not (isinstance(reference, (int, float)) and math.isfinite(reference) and reference > 0):
        raise ValueError(f"reference must be a finite loss > 0, got {reference!r}")
    xs, ys = _finite_points(steps, values)
    pts = [(s - switch, v / reference) for s, v in zip(xs, ys) if s >= switch]
    return [p[0] for p in pts], [p[1] for p in pts]


def loss_at_switch(result: RunResult) -> float | None:
    """The training loss where the modes start: the first logged loss at the switch step (all modes
    share those parameters), else the last one before it; ``None`` before a switch."""
    switch = result.switch_step
    if switch is None:
        return None
    at = [r["train_loss"] for r in result.rows if r["phase"] == "main" and r["step"] == switch]
    before = [r["train_loss"] for r in result.rows if r["phase"] == "warmup" and r["step"] <= switch]
    for value in (*at, *reversed(before)):
        if isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
            return float(value)
    return None


def log_ticks(lo: float, hi: float, max_ticks: int = 7) -> list[float]:
    """Readable tick values for a log axis spanning ``[lo, hi]`` (both > 0): 1-2-5 steps per
    decade, thinned to powers of ten over a wide range, every digit over a narrow one."""
    if not (lo > 0 and hi > 0 and math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"log_ticks needs finite lo, hi > 0; got lo={lo!r}, hi={hi!r}")
    lo, hi = min(lo, hi), max(lo, hi)
    for mantissas in ((1,), (1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
        ticks = [m * 10.0 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
                 for m in mantissas]
        ticks = [float(f"{t:.6g}") for t in ticks if lo <= t <= hi]
        if len(ticks) >= 3 or mantissas[-1] == 9:
            break
    if len(ticks) > max_ticks:  # a wide range: keep every n-th power of ten
        stride = math.ceil(len(ticks) / max_ticks)
        ticks = ticks[::stride]
    if len(ticks) < 3 and hi > lo:  # a narrow range (within one digit step): evenly spaced round values
        step = _nice_step((hi - lo) / 3)
        ticks = [float(f"{i * step:.6g}") for i in range(math.ceil(lo / step), math.floor(hi / step) + 1)]
    return ticks or [float(f"{lo:.3g}")]


def _nice_step(raw: float) -> float:
    """The smallest of 1, 2, 5 × 10^n that is at least ``raw`` (> 0)."""
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def tick_text(value: float) -> str:
    """A tick label: ``0.05``, ``0.2``, ``1``, ``1e-05`` (no trailing zeros)."""
    return f"{value:g}"


def headline_curves(result: RunResult) -> dict:
    """What the headline figure draws, as plain lists (shared by plotly and matplotlib).

    Returns ``{"switch", "reference", "shared": (steps, losses), "modes": {mode: {"label",
    "history": (steps, losses), "relative": (steps after switch, loss ÷ reference)}}}``;
    ``relative`` is empty before a switch.
    """
    cfg = result.config
    switch, reference = result.switch_step, loss_at_switch(result)
    warm = [r for r in result.rows if r["phase"] == "warmup"]
    out = {"switch": switch, "reference": reference,
           "shared": _finite_points([r["step"] for r in warm], [r["train_loss"] for r in warm]), "modes": {}}
    for mode in cfg.modes:
        rows = [r for r in result.rows if r["phase"] == "main" and r["mode"] == mode]
        history = _finite_points([r["step"] for r in rows], [r["train_loss"] for r in rows])
        relative = (relative_to_switch(*history, switch, reference) if reference is not None else ([], []))
        out["modes"][mode] = {"label": cfg.label(mode), "history": history, "relative": relative}
    return out


def headline_title(result: RunResult) -> str:
    cfg = result.config
    return (f"{cfg.label('dom')} vs {cfg.label('bulk')}: {cfg.dataset}, {cfg.model}, η={cfg.lr}, "
            f"batch {cfg.batch_size}, k={cfg.k} (switch at step {result.switch_step})")


def _loss_range(curves: dict) -> tuple[float, float] | None:
    values = [v for v in curves["shared"][1] if v > 0]
    for m in curves["modes"].values():
        values += [v for v in m["history"][1] if v > 0]
    return (min(values), max(values)) if values else None


def headline_figure(result: RunResult, *, height: int = 430, width: int | None = None):
    """Plotly figure: left, loss ÷ loss at the switch after it (linear); right, the whole run's
    loss (log, readable ticks) with the shared history in grey and the switch marked."""
    from plotly.subplots import make_subplots

    curves = headline_curves(result)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.09, subplot_titles=(RELATIVE_TITLE, HISTORY_TITLE))
    steps, losses = curves["shared"]
    fig.add_scatter(x=steps, y=losses, mode="lines", name=SHARED_LABEL, legendgroup="shared",
                    line=dict(color=SHARED_COLOR, width=2), row=1, col=2)
    for mode, c in curves["modes"].items():
        color = COLORS.get(mode, "#333")
        fig.add_scatter(x=c["relative"][0], y=c["relative"][1], mode="lines", name=c["label"], legendgroup=mode,
                        line=dict(color=color, width=2.5), row=1, col=1)
        fig.add_scatter(x=c["history"][0], y=c["history"][1], mode="lines", name=c["label"], legendgroup=mode,
                        showlegend=False, line=dict(color=color, width=2), row=1, col=2)
    fig.add_hline(y=1.0, line_dash="dot", line_color=SHARED_COLOR, row=1, col=1)
    if curves["switch"] is not None:
        fig.add_vline(x=curves["switch"], line_dash="dash", line_color="#555", row=1, col=2,
                      annotation_text=f"switch (step {curves['switch']})", annotation_position="top left")
    fig.update_xaxes(title_text="steps after the switch", row=1, col=1)
    fig.update_xaxes(title_text="step", row=1, col=2)
    fig.update_yaxes(title_text="loss ÷ loss at the switch", row=1, col=1)
    span = _loss_range(curves)
    log_axis = dict(type="log", title_text="training loss")
    if span is not None:
        ticks = log_ticks(*span)
        log_axis.update(tickvals=ticks, ticktext=[tick_text(t) for t in ticks])
    fig.update_yaxes(**log_axis, row=1, col=2)
    fig.update_layout(height=height, width=width, title=dict(text=headline_title(result), x=0.01, y=0.98),
                      margin=dict(t=80, b=110, l=70, r=20),
                      legend=dict(orientation="h", yanchor="top", y=-0.24, x=0.0))
    return fig


def draw_headline(result: RunResult, axes=None):
    """The headline figure with matplotlib on ``axes`` (two axes; new ones if ``None``); returns
    the matplotlib figure."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullLocator

    curves = headline_curves(result)
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    rel_ax, hist_ax = axes
    fig = rel_ax.figure
    hist_ax.plot(*curves["shared"], color=SHARED_COLOR, lw=2, label=SHARED_LABEL)
    for mode, c in curves["modes"].items():
        color = COLORS.get(mode, "#333")
        rel_ax.plot(*c["relative"], color=color, lw=2.5, label=c["label"])
        hist_ax.plot(*c["history"], color=color, lw=2)
    rel_ax.axhline(1.0, ls=":", color=SHARED_COLOR, lw=1)
    rel_ax.set(title=RELATIVE_TITLE, xlabel="steps after the switch", ylabel="loss ÷ loss at the switch")
    hist_ax.set_yscale("log")
    span = _loss_range(curves)
    if span is not None:
        ticks = log_ticks(*span)
        hist_ax.yaxis.set_major_locator(FixedLocator(ticks))
        hist_ax.yaxis.set_minor_locator(NullLocator())
        hist_ax.set_yticklabels([tick_text(t) for t in ticks])
    if curves["switch"] is not None:
        hist_ax.axvline(curves["switch"], ls="--", color="#555", lw=1)
        # Left of the line, unless the switch sits in the left third (the label would cover the ticks).
        lo, hi = hist_ax.get_xlim()
        right = (curves["switch"] - lo) < (hi - lo) / 3
        hist_ax.annotate(f"switch (step {curves['switch']})", (curves["switch"], 1.0),
                         xycoords=("data", "axes fraction"), xytext=(4 if right else -4, -14),
                         textcoords="offset points", ha="left" if right else "right", fontsize=10, color="#555")
    hist_ax.set(title=HISTORY_TITLE, xlabel="step", ylabel="training loss")
    for ax in axes:
        ax.grid(alpha=0.25)
    handles = rel_ax.get_legend_handles_labels()[0] + hist_ax.get_legend_handles_labels()[0][:1]
    fig.legend(handles, [h.get_label() for h in handles], loc="lower center", ncol=len(handles), frameon=False)
    fig.suptitle(headline_title(result), x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def save_headline(result: RunResult, path_stem) -> dict[str, "Path"]:
    """Write the headline figure as slide-ready ``<path_stem>.png`` (150 dpi) and ``.svg``;
    returns ``{"png": path, "svg": path}``. Needs no browser (matplotlib, Agg backend)."""
    from pathlib import Path

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = {"png": stem.with_suffix(".png"), "svg": stem.with_suffix(".svg")}
    with plt.rc_context({"font.size": 12, "svg.fonttype": "none"}):
        fig = draw_headline(result)
        fig.savefig(paths["png"], dpi=150)
        fig.savefig(paths["svg"])
        plt.close(fig)
    return paths
