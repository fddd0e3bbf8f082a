"""Every notebook runs headless (papermill, SMOKE=True) without error, as CI and a reader's
"run all" would; and the widget API those notebooks use works without a page.

Executed notebooks are written to ``test-artifacts/notebooks/`` for inspection.
"""
from __future__ import annotations

import copy
import threading
import time
from pathlib import Path

import pytest

from fake_run import FakeSource, fake_rows

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
OUTPUT = REPO / "test-artifacts" / "notebooks"
CELL_TIMEOUT_S = 600


@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_mode(path, tmp_path):
    papermill = pytest.importorskip("papermill")
    declared = papermill.inspect_notebook(str(path))
    assert "SMOKE" in declared, f"{path.name}: its 'parameters' cell must define SMOKE"
    params = {"SMOKE": True}
    if "STORE" in declared:  # a fresh run store, so the engine really runs instead of reading back
        params["STORE"] = str(tmp_path / "runs")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(str(path), str(OUTPUT / path.name), parameters=params, cwd=str(path.parent),
                               kernel_name="python3", execution_timeout=CELL_TIMEOUT_S, progress_bar=False)


def test_notebooks_folder_is_not_empty():
    assert NOTEBOOKS, "no notebooks found in notebooks/"


# ---------------------------------------------------------------- the widget API, headless
def _panel(delay=0.0, **kwargs):
    from subspace_kit.widgets import experiment_dashboard

    return experiment_dashboard(FakeSource(delay=delay, **kwargs))


def test_run_blocking_streams_every_mode_into_the_curves():
    panel = _panel(cached=False)
    outcome = panel.run_blocking({**panel.settings(), "steps": 300})
    assert outcome.status == "completed" and outcome.last_step == 299
    counts = panel.curves.point_counts()
    assert counts == {"SGD before the switch (shared)": 40, "SGD": 260, "Dom-SGD": 260, "Bulk-SGD": 260}
    assert panel.curves.switch_step == 40
    assert not panel.run_button.disabled and panel.stop_button.disabled


def test_second_run_click_is_ignored_and_stop_keeps_the_rows():
    panel = _panel(delay=0.005, cached=False)
    assert panel.start() is True
    assert panel.run_button.disabled and all(w.disabled for w in panel.controls.values())
    assert panel.start() is False  # a second click while running starts nothing
    time.sleep(1.0)
    panel.stop()
    assert panel.wait(10)
    outcome = panel.outcome
    assert outcome.status == "stopped" and 0 < outcome.last_step < 3999
    assert "Stopped at step" in panel.message.value
    kept = panel.curves.point_counts()
    assert kept["SGD"] > 0 and sum(kept.values()) == outcome.rows
    assert not panel.run_button.disabled and not any(w.disabled for w in panel.controls.values())


def test_invalid_setting_gives_a_readable_message_and_the_controls_come_back():
    panel = _panel()
    panel.controls["k"].value = 10**6
    assert panel.start()
    assert panel.wait(10)
    assert panel.outcome.status == "invalid"
    assert "Invalid setting: k must be smaller" in panel.message.value
    assert "Traceback" not in panel.message.value and not panel.controls["k"].disabled
    with pytest.raises(RuntimeError, match="k must be smaller"):  # headless: fail loudly
        panel.run_blocking()


def test_a_diverging_curve_is_reported_and_the_others_are_kept():
    panel = _panel(cached=False)
    outcome = panel.run_blocking({**panel.settings(), "lr": 2.0, "steps": 400}, check=False)
    assert outcome.status == "diverged"
    assert "Dom-SGD diverged at step" in outcome.message and "smaller learning rate" in outcome.message
    counts = panel.curves.point_counts()
    assert counts["SGD"] == counts["Bulk-SGD"] == 360 > counts["Dom-SGD"]


def test_an_error_inside_the_run_is_a_sentence_not_a_traceback():
    from subspace_kit.widgets import RunPanel

    def broken(settings, stop):
        yield from fake_rows({"steps": 5})
        raise RuntimeError("the disk is full")

    panel = RunPanel(broken)
    outcome = panel.run_blocking(check=False)
    assert outcome.status == "failed" and outcome.rows == 5
    assert "The run stopped with an error (RuntimeError): the disk is full" in panel.message.value


def test_cached_rows_are_in_the_figure_when_it_is_built():
    """The Voila trap: data known in advance must be in the widget state the page first reads."""
    panel = _panel()
    state = panel.curves.figure._widget_data
    loss = {t["name"]: len(t["x"]) for t in state if t["meta"][0] == "train_loss"}
    relative = {t["name"]: len(t["x"]) for t in state if t["meta"][0] == "loss_vs_switch"}
    assert loss == {"SGD before the switch (shared)": 40, "SGD": 160, "Dom-SGD": 160, "Bulk-SGD": 160}
    assert relative == {"SGD before the switch (shared)": 0, "SGD": 160, "Dom-SGD": 160, "Bulk-SGD": 160}


def test_widget_state_catches_up_with_updates_for_pages_that_connect_later():
    from subspace_kit.widgets import LiveCurves

    curves = LiveCurves()
    curves.extend(fake_rows({"steps": 100}))
    curves.flush(final=True)
    assert curves.figure._widget_data == copy.deepcopy(curves.figure._data)
    assert len(curves.figure._widget_data[0]["x"]) == 40


def test_updates_are_batched_at_most_a_few_per_second():
    from subspace_kit.widgets import LiveCurves

    curves = LiveCurves(max_updates_per_s=4)
    edits_before = curves.figure._last_trace_edit_id
    start = time.monotonic()
    for row in fake_rows({"steps": 2000}):
        curves.add(row)
    elapsed = time.monotonic() - start
    curves.flush()
    edits = curves.figure._last_trace_edit_id - edits_before
    assert edits <= 4 * elapsed + 3, (edits, elapsed)
    assert curves.point_counts()["Bulk-SGD"] == 1960


def test_pending_points_reach_the_figure_without_another_row():
    from subspace_kit.widgets import LiveCurves

    curves = LiveCurves(max_updates_per_s=4)
    rows = list(fake_rows({"steps": 50}))
    curves.add(rows[0])  # first update goes out at once
    curves.add(rows[1])  # within the interval: buffered, sent by the timer
    deadline = time.monotonic() + 3
    while len(curves.figure.data[0].x) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(curves.figure.data[0].x) == 2
    curves.close()


def test_a_repeated_step_replaces_its_point():
    from subspace_kit.widgets import LiveCurves

    curves = LiveCurves()
    row = dict(step=5, phase="main", mode="bulk", train_loss=0.5, alignment_full=0.1)
    curves.extend([row, {**row, "train_loss": 0.4}])
    assert curves.curve("bulk") == ([5], [0.4])


def test_stop_from_another_thread_ends_run_blocking():
    panel = _panel(delay=0.005, cached=False)
    threading.Timer(0.5, panel.stop_button.click).start()
    outcome = panel.run_blocking()
    assert outcome.status == "stopped" and outcome.last_step < 3999
