"""The engine as the widgets' row source: stored and shipped runs are read from the right place,
each row reaches the page once, and Stop before the first row says so plainly (issue 14, item 8)."""
from __future__ import annotations

import threading
from collections import Counter

import pytest

pytest.importorskip("ipywidgets")
from subspace_kit.experiment import RunConfig, RunStore, run  # noqa: E402
from subspace_kit.widgets import EngineSource, RunPanel  # noqa: E402
from subspace_kit.widgets.sources import row_key  # noqa: E402


def _keys(rows):
    return Counter(row_key(r) for r in rows)


def test_a_stored_diverged_run_is_replayed_once(tmp_path):
    settings = dict(k=3, lr=50.0, steps=60)
    stored = run(RunConfig.preset("smoke", **settings), store=tmp_path / "runs")
    assert stored.status == "diverged" and stored.rows
    source = EngineSource("smoke", store=tmp_path / "runs", shipped=tmp_path / "nothing")
    rows = list(source.make_rows(settings, threading.Event()))
    assert len(rows) == len(stored.rows)
    assert max(_keys(rows).values()) == 1


def test_a_stopped_run_resumes_without_repeating_its_rows(tmp_path):
    stop = threading.Event()
    source = EngineSource("smoke", store=tmp_path / "runs", shipped=tmp_path / "nothing")
    first = []
    for row in source.make_rows({}, stop):
        first.append(row)
        if row["phase"] == "main":
            stop.set()  # stop soon after the switch
    assert RunStore(tmp_path / "runs").load(source.config({})).status == "stopped"
    rows = list(source.make_rows({}, threading.Event()))
    assert max(_keys(rows).values()) == 1
    assert RunStore(tmp_path / "runs").load(source.config({})).status == "completed"
    assert len(rows) == len(RunStore(tmp_path / "runs").load(source.config({})).rows)


def test_shipped_runs_are_drawn_whatever_the_user_store(tmp_path):
    shipped = tmp_path / "shipped"
    done = run(RunConfig.preset("smoke"), store=shipped)
    source = EngineSource("smoke", store=tmp_path / "empty", shipped=shipped)
    assert len(source.cached_rows({})) == len(done.rows) > 0
    assert source.cached_rows({"k": 10**6}) == []  # rejected settings: nothing stored, no error


def test_a_live_run_starts_with_the_shipped_history_then_adds_the_rest_once(tmp_path):
    shipped = tmp_path / "shipped"
    done = run(RunConfig.preset("smoke"), store=shipped)
    source = EngineSource("smoke", store=tmp_path / "mine", shipped=shipped)
    rows = list(source.make_rows({}, threading.Event()))
    warm = sum(r["phase"] == "warmup" for r in done.rows)
    assert all(r["phase"] == "warmup" for r in rows[:warm])  # the shared history first, at once
    assert max(_keys(rows).values()) == 1
    assert _keys(rows) == _keys(done.rows)  # the live run logs the same steps as the shipped one


def test_stop_before_the_first_row_says_so_without_a_step_number():
    def waits_for_stop(settings, stop):
        stop.wait(10)
        return
        yield  # a generator that logs nothing before it is stopped

    panel = RunPanel(waits_for_stop)
    assert panel.start()
    panel.stop()
    assert panel.wait(10)
    assert panel.outcome.status == "stopped" and panel.outcome.last_step is None
    assert "None" not in panel.message.value
    assert "before the first step" in panel.message.value


def test_a_subclass_with_its_own_init_still_runs(tmp_path):
    class OwnStores(EngineSource):  # like toy_panels.CachedSource: sets its fields without super().__init__
        def __init__(self, store):
            self.preset, self.store, self.fields = "smoke", store, ()

    rows = list(OwnStores(tmp_path / "runs").make_rows({}, threading.Event()))
    assert rows and max(_keys(rows).values()) == 1


def test_the_default_source_finds_the_shipped_class_run_from_any_working_folder(tmp_path, monkeypatch):
    from subspace_kit import paths

    if RunStore(paths.shipped_runs()).load(RunConfig.preset("class")) is None:
        pytest.skip("the shipped class run is not in this checkout")
    monkeypatch.delenv("SUBSPACE_KIT_RUNS", raising=False)
    monkeypatch.chdir(tmp_path)  # no runs/ here: only the shipped store can answer
    rows = EngineSource().cached_rows({})
    assert {r["phase"] for r in rows} == {"warmup", "main"} and len(rows) > 200
