"""The toy panels of notebooks 05, 06 and 08 read right: guides at their value, log axes framed on
the data, SGD's bouncing visible, legends clear of titles, and sliders that redraw by themselves.

Each test reads the figure's own data and layout (what the page draws), so it fails on the
bugs it guards against: a guide placed in log10 units on a log axis (drawn at log10(value) as a
data value: 1.6 shown at 0.2), a log axis stretched over dozens of empty decades, a path panel
framed by GD's start.
"""
from __future__ import annotations

import math

import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("plotly")

from subspace_kit.widgets.toy_panels import (LEGEND_MARGIN_PX, ToyCurves, eos_panel, log_range, overlay,
                                             quadratic_panel, valley_panel)

SMALL_VALLEY = dict(warmup=200, steps=400, animate_s=0.0)
SMALL_QUADRATIC = dict(warmup=200, steps=300, animate_s=0.0, flat_count=20)


def _loss_axis(panel, index):
    return panel.curves.figure.layout[f"yaxis{index}"]


def _plotted(panel, axis):
    """Every positive value plotted on the y axis ``axis`` ("y", "y2", ...), read from the figure."""
    return [float(v) for t in panel.curves.figure.data if t.type == "scatter" and t.yaxis == axis
            for v in t.y or () if math.isfinite(float(v)) and float(v) > 0]


@pytest.mark.parametrize("make, axis, kwargs", [(valley_panel, 2, SMALL_VALLEY),
                                                (quadratic_panel, "", SMALL_QUADRATIC)])
def test_dom_floor_guide_is_drawn_at_the_floor_in_data_units(make, axis, kwargs):
    panel = make(live=False, **kwargs)
    panel.run_blocking()
    fig = panel.curves.figure
    assert _loss_axis(panel, axis).type == "log"
    (shape,) = fig.layout.shapes
    (note,) = fig.layout.annotations
    floor = float(note.text.split("floor ")[1].split(" ")[0])
    assert shape.yref == f"y{axis}" and shape.y0 == shape.y1
    assert shape.y0 == pytest.approx(floor, rel=1e-2)  # shapes: data units on a log axis
    assert note.y == pytest.approx(math.log10(shape.y0))  # annotations: log10 units on a log axis


@pytest.mark.parametrize("make, axis, kwargs", [(valley_panel, 2, SMALL_VALLEY),
                                                (quadratic_panel, "", SMALL_QUADRATIC)])
def test_log_loss_axis_spans_the_plotted_data_within_a_decade(make, axis, kwargs):
    panel = make(live=False, **kwargs)
    panel.run_blocking()
    values = _plotted(panel, f"y{axis}") + [panel.curves.figure.layout.shapes[0].y0]
    lo, hi = _loss_axis(panel, axis).range
    assert math.log10(min(values)) - 1 <= lo <= math.log10(min(values))
    assert math.log10(max(values)) <= hi <= math.log10(max(values)) + 1


def test_log_range_ignores_non_positive_values_and_caps_the_span():
    assert log_range([1e-3, 1.0, 0.0, -5.0, float("nan")], pad_decades=0) == pytest.approx([-3, 0])
    assert log_range([1e-300, 10.0], pad_decades=0, max_decades=12) == pytest.approx([-11, 1])
    with pytest.raises(ValueError, match="values"):
        log_range([0.0, -1.0])


def test_valley_path_panel_is_framed_on_sgds_bouncing_not_on_gds_start():
    panel = valley_panel(live=False, **SMALL_VALLEY)
    panel.run_blocking()
    fig = panel.curves.figure
    lo, hi = fig.layout.xaxis.range
    bouncing = [abs(r) for m in ("none", "dom") for r in panel.curves.curve(m, "x")[1]]
    assert hi < 0.1 < 0.5  # GD starts at x = 0.5: framing on it made SGD's bouncing a few pixels wide
    assert max(bouncing) <= hi <= 2 * max(bouncing)  # every bounce inside, and filling the frame
    assert lo == pytest.approx(-hi)


def test_toy_legend_sits_in_a_top_margin_it_fits_and_overlay_legend_is_below_the_titles():
    curves = ToyCurves([("train_loss", "loss", True)], modes=["gd", "none", "dom", "bulk"])
    layout = curves.figure.layout
    assert layout.legend.yanchor == "bottom" and layout.legend.y >= 1.0
    assert layout.margin.t == LEGEND_MARGIN_PX >= 60 and not layout.title.text
    rows = [dict(step=0, phase="warmup", mode="none", train_loss=1.0), dict(step=1, phase="warmup", mode="none",
                                                                           train_loss=0.5)]
    fig = overlay([("SGD", rows, "warmup", "blue")], [("train_loss", "loss", True), ("train_loss", "again", False)],
                  title="a title")
    titles = [a.y for a in fig.layout.annotations]  # subplot titles: at the top of the panels
    assert fig.layout.legend.yanchor == "top" and fig.layout.legend.y < 0 < min(titles)


def test_moving_a_slider_redraws_once_after_the_last_change_without_a_run_click():
    panel = valley_panel(**SMALL_VALLEY)
    panel.run_blocking()
    before = panel.curves.figure.layout.shapes[0].y0
    assert panel.live.count == 0
    for c in (0.04, 0.05, 0.06):  # a drag across three values: one redraw
        panel.controls["c"].value = c
    assert panel.live.wait(20)
    assert panel.live.count == 1
    assert panel.outcome.status == "completed"
    after = panel.curves.figure.layout.shapes[0].y0
    assert after != pytest.approx(before)  # the Dom floor moved with the noise c
    assert panel.curves.point_counts()["Dom-SGD"] > 0


def test_eos_panel_guide_is_two_over_eta_on_a_linear_axis():
    panel = eos_panel(steps=60, animate_s=0.0, live=False)
    panel.run_blocking()
    (shape,) = panel.curves.figure.layout.shapes
    assert shape.y0 == pytest.approx(2.0 / panel.controls["lr"].value)
    assert panel.curves.figure.layout.yaxis2.type == "linear"
