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
    fig.update_yaxes(type="log", row=1, col=1)
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
