"""The class experiment: each group runs one setting, hands in a result file, the class pools them.

A group calls ``class_config(k=20)`` (or ``lr``, ``batch_size``, ``loss``, ``optimizer``; one
setting varied from the ``class`` preset, with a short post-switch horizon), runs it, and
``contribute(result, folder, group)`` writes a small JSON file into a shared folder (a network
drive, a shared directory on the class server, or files collected by e-mail into one folder).
``read_contributions(folder)`` reads every file back; ``pooled_figure`` draws Dom/SGD and
Bulk/SGD loss ratios against each varied setting; ``save_pooled`` writes it as PNG and SVG.

Concurrency: a contribution is written to a temporary file in the folder and renamed into
place (``os.replace``, atomic on one file system) under a name no other contribution can have
(group, config key and a random suffix). Nothing is ever appended to a shared file, so groups
handing in at the same moment cannot damage each other; a reader sees each file whole or not
at all (temporary files start with a dot and are skipped).

What a contribution holds (no pickle, plain JSON): the run's full config, its status, the
loss at the switch (shared by all modes), each mode's final loss (median of the last
``FINAL_WINDOW`` logged values, so one noisy minibatch-sized wiggle does not decide it), the
ratios ``dom/sgd`` and ``bulk/sgd`` of those final losses, the median alignment χ_k over the
last ``FINAL_WINDOW`` phase-1 checks, and each mode's post-switch curve relative to the
loss at the switch.
"""
from __future__ import annotations

import json
import math
import re
import statistics
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .config import RunConfig
from .results import RunResult
from .store import write_json

SCHEMA = "subspace_kit.class_result/1"
# What a group may vary, and the values we suggest (any valid value of the field is accepted).
SETTINGS: dict[str, tuple] = {
    "k": (1, 5, 10, 20, 50),
    "lr": (0.005, 0.01, 0.02),
    "batch_size": (25, 50, 100),
    "loss": ("mse", "cross_entropy"),
    "optimizer": ("sgd", "momentum", "adam", "sam"),
}
# A value that needs another field changed to be in its regime brings that change along (the
# kit's cached runs use the same pairs): Adam's step is 10x smaller, cross-entropy's sharpness
# is far below MSE's so its step is 5x larger. An explicit value in the setting wins.
COMPANIONS: dict[tuple[str, object], dict] = {
    ("optimizer", "adam"): {"lr": 0.001},
    ("loss", "cross_entropy"): {"lr": 0.05},
}
POST_SWITCH_STEPS = 300  # class-sized: 47 s per group on one quiet core (k = 10; see docs/TEACHING.md)
SMOKE_POST_SWITCH_STEPS = 10
FINAL_WINDOW = 5  # logged rows whose median is a mode's final loss
RATIO_MODES = {"dom": "Dom/SGD", "bulk": "Bulk/SGD"}
RATIO_COLORS = {"dom": "#d62728", "bulk": "#2ca02c"}


def class_config(*, smoke: bool = False, **setting) -> RunConfig:
    """The run of one group: the ``class`` preset (or, with ``smoke``, the seconds-long ``smoke``
    preset) with ``setting`` (keys from ``SETTINGS``) and ``POST_SWITCH_STEPS`` steps after the
    switch. ``ValueError`` naming the key for anything else."""
    unknown = sorted(set(setting) - set(SETTINGS))
    if unknown:
        raise ValueError(f"setting {unknown[0]!r} cannot be varied in the class experiment; "
                         f"choose from {', '.join(SETTINGS)}")
    preset = "smoke" if smoke else "class"
    base = RunConfig.preset(preset)
    horizon = SMOKE_POST_SWITCH_STEPS if smoke else POST_SWITCH_STEPS
    implied = {k: v for item in setting.items() for k, v in COMPANIONS.get(item, {}).items()}
    return RunConfig.preset(preset, steps=base.switch_step + horizon, modes=("none", "dom", "bulk"),
                            **{**implied, **setting})


def baseline_config(*, smoke: bool = False) -> RunConfig:
    """The run every varied setting is compared with: ``class_config()`` itself."""
    return class_config(smoke=smoke)


def varied(cfg: RunConfig | dict, *, smoke: bool = False) -> dict:
    """``{field: value}`` of the settings in which ``cfg`` differs from the baseline (empty for
    the baseline); a companion change (``COMPANIONS``) that came with a setting is not listed."""
    cfg = cfg.to_dict() if isinstance(cfg, RunConfig) else cfg
    base = baseline_config(smoke=smoke).to_dict()
    diff = {name: cfg[name] for name in SETTINGS if cfg.get(name) != base[name]}
    primary = {name: value for name, value in diff.items()
               if not any(COMPANIONS.get(item, {}).get(name, object()) == value for item in diff.items())}
    reference = class_config(smoke=smoke, **primary).to_dict()  # what those settings imply
    return {**primary, **{name: cfg[name] for name in SETTINGS if cfg.get(name) != reference[name]}}


# ---------------------------------------------------------------------------- one contribution
def _median_tail(values: list[float]) -> float:
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return statistics.median(finite[-FINAL_WINDOW:]) if finite else math.nan


def summarize(result: RunResult) -> dict:
    """The numbers a contribution carries (see the module docstring), from a finished run."""
    cfg, switch = result.config, result.switch_step
    if switch is None or not {"none", "dom", "bulk"} <= set(cfg.modes):
        raise ValueError("result must be a run with a switch and the modes none, dom and bulk; "
                         f"got switch {switch} and modes {list(cfg.modes)}")
    warm = [r for r in result.rows if r["phase"] == "warmup"]
    at_switch = next(r["train_loss"] for r in result.rows if r["phase"] == "main" and r["step"] == switch)
    final, curves = {}, {}
    for mode in ("none", "dom", "bulk"):
        rows = [r for r in result.rows if r["phase"] == "main" and r["mode"] == mode]
        final[mode] = _median_tail([r["train_loss"] for r in rows])
        curves[mode] = [[r["step"] - switch, r["train_loss"] / at_switch] for r in rows
                        if math.isfinite(r["train_loss"])]
    ratios = {m: final[m] / final["none"] if final["none"] > 0 else math.nan for m in RATIO_MODES}
    return {"status": result.status, "switch_step": switch, "loss_at_switch": at_switch, "final_loss": final,
            "ratios": ratios, "alignment_before_switch": _median_tail([r.get("alignment_full") for r in warm]),
            "post_switch_steps": cfg.steps - switch, "relative_curves": curves}


def _slug(group: str) -> str:
    if not isinstance(group, str) or not group.strip():
        raise ValueError(f"group must be a non-empty name, e.g. 'team-3'; got {group!r}")
    slug = re.sub(r"[^a-z0-9]+", "-", group.strip().lower()).strip("-")
    return slug[:40] or "group"


def contribute(result: RunResult, folder, group: str) -> Path:
    """Hand in ``result`` for ``group``: a new file in ``folder`` (created if needed), written
    atomically under a unique name. Returns its path; never touches other files."""
    entry = {"schema": SCHEMA, "group": group, "submitted_utc": datetime.now(timezone.utc).isoformat(),
             "config": result.config.to_dict(), "config_key": result.config.key(), "summary": summarize(result)}
    name = f"{_slug(group)}-{result.config.key()[:8]}-{uuid.uuid4().hex[:12]}.json"
    path = Path(folder) / name
    write_json(path, _finite_json(entry))  # tempfile in the same folder + os.replace
    return path


def _finite_json(value):
    """NaN/inf as ``None``: strict JSON, readable by any tool a teacher might use."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v) for v in value]
    return value


# ---------------------------------------------------------------------------- pooling
@dataclass(frozen=True)
class Contribution:
    """One handed-in result: ``group``, its ``config`` (a ``RunConfig``), ``summary`` (see
    ``summarize``) and the file it came from."""

    group: str
    config: RunConfig
    summary: dict
    path: Path

    def ratio(self, mode: str) -> float:
        value = self.summary["ratios"].get(mode)
        return math.nan if value is None else float(value)


@dataclass(frozen=True)
class Pool:
    """Every readable contribution of a folder (oldest file first) and ``skipped``: ``(file
    name, reason)`` for files that could not be used."""

    entries: list[Contribution]
    skipped: list[tuple[str, str]]

    def table(self, *, smoke: bool = False) -> list[dict]:
        """One row per contribution: group, the varied setting(s), status, the two ratios."""
        return [{"group": e.group, "setting": _describe(varied(e.config, smoke=smoke)), "status": e.summary["status"],
                 "Dom/SGD": e.ratio("dom"), "Bulk/SGD": e.ratio("bulk")} for e in self.entries]


def _describe(setting: dict) -> str:
    return ", ".join(f"{k} = {v}" for k, v in setting.items()) or "baseline (class preset)"


def _read_one(path: Path) -> Contribution:
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"not a class result (schema {SCHEMA!r})")
    summary = data["summary"]
    for key in ("status", "ratios", "final_loss", "loss_at_switch"):
        if key not in summary:
            raise ValueError(f"summary has no {key!r}")
    return Contribution(str(data["group"]), RunConfig.from_dict(data["config"]), summary, path)


def read_contributions(folder) -> Pool:
    """Read every ``*.json`` contribution in ``folder`` (temporary files of contributions being
    written are skipped silently; unreadable files are listed in ``skipped`` with the reason)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"folder {str(folder)!r} does not exist; create it, or point to the shared folder")
    entries, skipped = [], []
    for path in sorted(folder.glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name)):
        if path.name.startswith("."):
            continue
        try:
            entries.append(_read_one(path))
        except (ValueError, KeyError, TypeError) as exc:  # JSONDecodeError is a ValueError
            skipped.append((path.name, f"{type(exc).__name__}: {exc}"))
    return Pool(entries, skipped)


def panels(pool: Pool, *, smoke: bool = False) -> dict[str, list[tuple[object, Contribution]]]:
    """``{setting: [(value, contribution), ...]}``: for each setting of ``SETTINGS`` that some group
    varied, the contributions that vary it alone, plus the baseline runs at the baseline value."""
    base = baseline_config(smoke=smoke)
    out: dict[str, list] = {}
    for e in pool.entries:
        diff = varied(e.config, smoke=smoke)
        if len(diff) == 1:
            (name, value), = diff.items()
            out.setdefault(name, []).append((value, e))
    for name in list(out):
        out[name] += [(getattr(base, name), e) for e in pool.entries if not varied(e.config, smoke=smoke)]
        out[name].sort(key=lambda p: (isinstance(p[0], str), p[0]))
    order = list(SETTINGS)
    return dict(sorted(out.items(), key=lambda kv: order.index(kv[0])))


def ratio_points(points: list[tuple[object, Contribution]], mode: str) -> tuple[list, list, list]:
    """``(values, ratios, medians)`` of one panel: each contribution's ratio, and per distinct
    value the median over the groups that ran it (``medians`` is ``[(value, median), ...]``)."""
    xs, ys = [p[0] for p in points], [p[1].ratio(mode) for p in points]
    medians = []
    for value in dict.fromkeys(xs):
        finite = [y for x, y in zip(xs, ys) if x == value and math.isfinite(y)]
        if finite:
            medians.append((value, statistics.median(finite)))
    return xs, ys, medians


def pooled_figure(pool: Pool, *, smoke: bool = False):
    """Plotly figure: one panel per varied setting, Dom/SGD and Bulk/SGD final-loss ratios
    (markers: groups; line: median per value); 1 means "as low as SGD"."""
    from plotly.subplots import make_subplots

    groups = panels(pool, smoke=smoke)
    if not groups:
        raise ValueError("no contribution varies a setting of the class experiment yet; "
                         f"{len(pool.entries)} read, {len(pool.skipped)} skipped")
    fig = make_subplots(rows=1, cols=len(groups), subplot_titles=list(groups), shared_yaxes=True,
                        horizontal_spacing=0.05)
    for c, (name, points) in enumerate(groups.items(), 1):
        categorical = any(isinstance(v, str) for v, _ in points)
        for mode, label in RATIO_MODES.items():
            xs, ys, medians = ratio_points(points, mode)
            color = RATIO_COLORS[mode]
            fig.add_scatter(x=[str(x) for x in xs] if categorical else xs, y=ys, mode="markers",
                            marker=dict(color=color, size=9, opacity=0.6), name=f"{label} (a group)",
                            legendgroup=f"{mode}-groups", showlegend=c == 1,
                            text=[e.group for _, e in points], row=1, col=c)
            fig.add_scatter(x=[str(m[0]) if categorical else m[0] for m in medians], y=[m[1] for m in medians],
                            mode="lines", line=dict(color=color, width=2), name=f"{label} (median)",
                            legendgroup=mode, showlegend=c == 1, row=1, col=c)
        fig.add_hline(y=1.0, line_dash="dot", line_color="gray", row=1, col=c)
        if name in ("k", "lr", "batch_size"):
            ticks = sorted({v for v, _ in points})
            fig.update_xaxes(type="log", tickvals=ticks, ticktext=[f"{t:g}" for t in ticks], row=1, col=c)
        fig.update_xaxes(title_text=name, row=1, col=c)
    fig.update_yaxes(title_text="final loss ÷ SGD's final loss", row=1, col=1)
    fig.update_layout(height=400, margin=dict(t=50, b=110, l=70, r=20),
                      legend=dict(orientation="h", yanchor="top", y=-0.3, x=0))
    return fig


def save_pooled(pool: Pool, path_stem, *, smoke: bool = False) -> list[Path]:
    """The pooled figure with matplotlib (no browser): ``<path_stem>.png`` and ``.svg``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = panels(pool, smoke=smoke)
    if not groups:
        raise ValueError("no contribution varies a setting of the class experiment yet")
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.8), sharey=True, squeeze=False)
    for ax, (name, points) in zip(axes[0], groups.items()):
        categorical = any(isinstance(v, str) for v, _ in points)
        for mode, label in RATIO_MODES.items():
            xs, ys, medians = ratio_points(points, mode)
            xs = [str(x) for x in xs] if categorical else xs
            ax.scatter(xs, ys, color=RATIO_COLORS[mode], alpha=0.6, label=f"{label} (a group)")
            ax.plot([str(m[0]) if categorical else m[0] for m in medians], [m[1] for m in medians],
                    color=RATIO_COLORS[mode], label=f"{label} (median)")
        ax.axhline(1.0, ls=":", color="gray")
        if name in ("k", "lr", "batch_size"):
            ax.set_xscale("log")
            ticks = sorted({v for v, _ in points})
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])  # the values the groups ran, not powers of 10
            ax.minorticks_off()
        ax.set_xlabel(name)
    axes[0][0].set_ylabel("final loss ÷ SGD's final loss")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    for p in paths:
        fig.savefig(p, dpi=150)
    plt.close(fig)
    return paths
