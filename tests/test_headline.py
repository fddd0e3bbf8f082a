"""The headline figure: after the switch, loss ÷ loss at the switch on a linear axis, beside the
whole run on a log axis with readable ticks; the same layout in the live dashboard."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from subspace_kit import paths
from subspace_kit.experiment import RunStore
from subspace_kit.experiment.figures import (SHARED_COLOR, SHARED_LABEL, headline_curves, headline_figure, log_ticks,
                                             relative_to_switch, save_headline)

CLASS_RUN = paths.shipped_runs() / "0655fedbf94c8d43"


@pytest.fixture(scope="module")
def class_run():
    result = RunStore.load_path(CLASS_RUN)
    if result is None:
        pytest.skip(f"the shipped class run {CLASS_RUN} is not in this checkout")
    return result


def test_relative_curve_starts_at_one_and_divides_by_the_reference():
    steps, ratios = relative_to_switch([0, 10, 20, 30], [2.0, 1.0, 0.5, float("nan")], 10, 1.0)
    assert steps == [0, 10] and ratios == [1.0, 0.5]
    with pytest.raises(ValueError, match="reference"):
        relative_to_switch([0], [1.0], 0, 0.0)


@pytest.mark.parametrize("lo, hi", [(0.12, 1.16), (1e-5, 10.0), (0.13, 0.17), (0.5, 0.52), (1e-49, 1e2)])
def test_log_ticks_are_few_round_and_inside_the_range(lo, hi):
    ticks = log_ticks(lo, hi)
    assert 1 <= len(ticks) <= 7 and ticks == sorted(ticks)
    assert all(lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9) for t in ticks)
    assert all(len(f"{t:g}") <= 6 for t in ticks)  # "0.2", "1e-05": no "0.1999999"


def test_headline_curves_of_the_class_run_show_the_split(class_run):
    curves = headline_curves(class_run)
    assert curves["switch"] == 2000
    final = {m: c["relative"][1][-1] for m, c in curves["modes"].items()}
    assert all(c["relative"][1][0] == pytest.approx(1.0, abs=1e-6) for c in curves["modes"].values())
    # the claim the figure exists to show, measured: Dom-SGD stays near 1, SGD and Bulk-SGD fall
    assert final["dom"] > 0.95 and final["none"] < 0.9 and final["bulk"] < 0.9


def test_plotly_headline_has_grey_shared_history_marked_switch_and_readable_log_ticks(class_run):
    fig = headline_figure(class_run)
    shared = [t for t in fig.data if t.name == SHARED_LABEL]
    assert len(shared) == 1 and shared[0].line.color == SHARED_COLOR and shared[0].showlegend is not False
    assert fig.layout.yaxis.type in (None, "linear", "-") and fig.layout.yaxis2.type == "log"
    ticks = list(fig.layout.yaxis2.tickvals)
    assert 2 <= len(ticks) <= 7 and list(fig.layout.yaxis2.ticktext) == [f"{t:g}" for t in ticks]
    assert any(s.x0 == 2000 and s.x1 == 2000 for s in fig.layout.shapes)  # the switch
    assert fig.layout.legend.y < 0  # below the plots: never over a title


def test_save_headline_writes_png_and_svg(class_run, tmp_path):
    out = save_headline(class_run, tmp_path / "headline")
    assert out["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out["png"].stat().st_size > 20_000
    svg = out["svg"].read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "Dom-SGD" in svg


def test_live_headline_layout_grows_with_the_run():
    sys.path.insert(0, str(Path(__file__).parent))
    from fake_run import fake_rows

    from subspace_kit.widgets import LiveCurves

    curves = LiveCurves(headline=True, panels=("alignment_full",))
    assert curves.panels == ("loss_vs_switch", "train_loss", "alignment_full")
    rows = list(fake_rows({"steps": 100}))
    curves.extend(rows[:30])  # before the switch: no relative curve yet
    curves.flush()
    assert curves.point_counts("loss_vs_switch")["SGD"] == 0
    curves.extend(rows[30:])
    curves.flush(final=True)
    steps, ratios = curves.curve("dom", "loss_vs_switch")
    loss_steps, losses = curves.curve("dom")
    assert steps[0] == 0 and loss_steps[0] == curves.switch_step == 40
    assert ratios[0] == pytest.approx(losses[0] / curves.loss_at_switch())
    assert ratios[-1] == pytest.approx(losses[-1] / curves.loss_at_switch())
    shapes = curves.figure.layout.shapes
    assert sum(s.x0 == curves.switch_step for s in shapes) == 2  # loss and alignment panels
    assert curves.figure.layout.yaxis2.tickvals  # readable ticks on the log panel
    assert all(math.isfinite(v) for v in ratios)


def test_three_panel_figure_has_readable_loss_ticks_too(class_run, tmp_path):
    from subspace_kit.experiment.figures import figure, save_png

    fig = figure(class_run)
    assert list(fig.layout.yaxis.ticktext) == [f"{t:g}" for t in fig.layout.yaxis.tickvals]
    save_png(class_run, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 10_000
