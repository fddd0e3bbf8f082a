"""The Voila dashboard as a person uses it: served on 127.0.0.1, driven in headless Chromium.

Checked on the page itself (the plotly graph's ``data``, not just the DOM): the controls and the
plot render; curves already in the run store are drawn as soon as the page loads (the Voila
trap); Run makes loss points appear in all three curves; Stop stops them growing; a rejected
setting and a diverged run show a readable message, the controls come back, and no Python
traceback appears. Two row sources: the real experiment engine (``smoke`` preset) and the fake
in ``fake_run.py`` (fast, deterministic).

With the ``class`` preset and an empty run store, the page must open with the shipped run drawn
(before any click), on axes whose ranges make sense (read from the page's plotly layout: no
1e-49-to-1e2 log axis, no curve squashed into a sliver), and Run must add post-switch points
within the live budget (``SUBSPACE_KIT_LIVE_BUDGET_S``, 90 s by default: "within a minute on one
core", with slack for a loaded machine) once the shipped switch-point checkpoints are there.
"""
from __future__ import annotations

import contextlib
import os
import time

import nbformat
import pytest
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from browser_helpers import (BIN, REPO, absurd_axes, artifact, assert_no_traceback, chromium_page,
                             env_with_tests_on_path, explain_failure, free_port, loss_points, plotted_axes,
                             require_chromium, server, wait_for)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CURVES = ("SGD", "Dom-SGD", "Bulk-SGD")
SHARED = "SGD before the switch (shared)"


def _prepare(tmp_path, source: str):
    """A copy of the dashboard with its parameters set (as papermill would), and its run store."""
    store = tmp_path / "runs"
    params = {"STORE": str(store)}
    if source == "engine":
        from subspace_kit.experiment import RunConfig, run

        params["PRESET"] = "smoke"
        run(RunConfig.preset("smoke"), store=store)  # a finished run: the page must open with it
    elif source == "class":
        params["PRESET"] = "class"  # nothing in the store: the page must open with the shipped run
    else:
        params["ROW_SOURCE"] = "fake_run"
    nb = parameterize_notebook(load_notebook_node(str(REPO / "notebooks" / "dashboard.ipynb")), params)
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nbformat.write(nb, folder / "dashboard.ipynb")
    return folder


@contextlib.contextmanager
def _voila(tmp_path, source: str):
    require_chromium()
    folder = _prepare(tmp_path, source)
    port = free_port()
    cmd = [str(BIN / "voila"), "dashboard.ipynb", f"--port={port}", "--Voila.ip=127.0.0.1", "--no-browser",
           "--show_tracebacks=False"]
    # Ready when it serves the widget front end plotly needs (GET / would execute the notebook;
    # /api/status is not served in single-notebook mode).
    ready = f"http://127.0.0.1:{port}/voila/labextensions/anywidget/package.json"
    with server(cmd, ready, cwd=folder, env=env_with_tests_on_path(), log=tmp_path / "voila.log", timeout=120):
        yield f"http://127.0.0.1:{port}/"


@pytest.fixture(params=["fake", "engine"])
def dashboard_url(request, tmp_path):
    if request.param == "engine":
        pytest.importorskip("subspace_kit.experiment", reason="the experiment engine (issue 3) is not installed")
    with _voila(tmp_path, request.param) as url:
        yield request.param, url


def _set(page, field: str, value) -> None:
    box = page.locator(f".subspace-kit-control-{field} input")
    box.fill(str(value))
    box.press("Enter")  # text inputs send their value on Enter or blur


def _status(page) -> str:
    return page.inner_text(".subspace-kit-status")


def _message(page) -> str:
    box = page.locator(".subspace-kit-message")
    return box.inner_text() if box.count() else ""


def test_dashboard_runs_stops_and_explains_errors_in_the_browser(dashboard_url):
    source, url = dashboard_url
    with chromium_page() as page, explain_failure(page, f"dashboard-{source}"):
        page.goto(url, timeout=180_000)  # Voila executes the notebook before the page completes
        run = page.locator(".subspace-kit-run")
        run.wait_for(state="visible", timeout=180_000)
        assert run.inner_text().strip() == "Run"
        stop = page.locator(".subspace-kit-stop")
        assert stop.inner_text().strip() == "Stop"
        for field in ("k", "lr", "batch_size", "steps", "switch_step", "refresh_every"):
            assert page.locator(f".subspace-kit-control-{field} input").is_visible(), field
        page.locator(".js-plotly-plot").first.wait_for(state="visible")

        # The run store's curves are on the page at load: the figure was built with them.
        at_load = wait_for(lambda: loss_points(page), 30, "the plot's traces")
        assert all(at_load.get(name, 0) > 0 for name in CURVES), at_load
        assert not absurd_axes(plotted_axes(page)), absurd_axes(plotted_axes(page))

        # Run with new settings (nothing cached): points stream into all three curves.
        _set(page, "steps", 3000)
        run.click()
        wait_for(run.is_disabled, 30, "Run to be disabled while the run goes on")
        assert page.locator(".subspace-kit-control-k input").is_disabled()
        wait_for(lambda: "Running" in _status(page), 180, "the run's first rows (the old curves cleared)")
        counts = wait_for(lambda: (c := loss_points(page)) and all(c.get(n, 0) > 0 for n in CURVES) and c,
                          180, "loss points in the SGD, Dom-SGD and Bulk-SGD curves")
        grown = wait_for(lambda: (c := loss_points(page)) and c["SGD"] > counts["SGD"] and c, 60,
                         "the curves to keep growing while the run goes on")

        # Stop: the run ends, its points stay, and no more arrive.
        stop.click()
        wait_for(lambda: "Stopped" in _status(page), 60, "the status to say Stopped")
        stopped = loss_points(page)
        assert stopped["SGD"] >= grown["SGD"] > 0
        page.screenshot(path=str(artifact(f"dashboard-{source}-stopped.png")), full_page=True)
        time.sleep(3)
        assert loss_points(page) == stopped
        assert "Stopped at step" in _message(page)
        assert not run.is_disabled()

        # A setting the engine rejects: a readable message, controls usable again.
        _set(page, "k", 10**6)
        run.click()
        text = wait_for(lambda: "Invalid setting" in _message(page) and _message(page), 120,
                        "the invalid-setting message")
        assert "k" in text and "1000000" in text
        wait_for(lambda: not run.is_disabled(), 30, "the Run button to come back")
        assert not page.locator(".subspace-kit-control-k input").is_disabled()

        # A learning rate that diverges: the message names it.
        _set(page, "k", 3 if source == "engine" else 10)
        _set(page, "lr", 50 if source == "engine" else 2)
        _set(page, "steps", 60 if source == "engine" else 400)
        run.click()
        wait_for(lambda: "diverged" in _message(page), 180, "the divergence message")
        wait_for(lambda: not run.is_disabled(), 30, "the Run button to come back")
        page.screenshot(path=str(artifact(f"dashboard-{source}-diverged.png")), full_page=True)
        assert_no_traceback(page)


def _shipped_switch_checkpoints() -> bool:
    from subspace_kit import paths

    return any(paths.shipped_runs().rglob("*.npz"))


def test_dashboard_opens_with_the_shipped_class_run_and_run_adds_post_switch_points(tmp_path):
    with _voila(tmp_path, "class") as url, chromium_page() as page, explain_failure(page, "dashboard-class"):
        page.goto(url, timeout=180_000)
        run = page.locator(".subspace-kit-run")
        run.wait_for(state="visible", timeout=180_000)
        page.locator(".js-plotly-plot").first.wait_for(state="visible")

        # Before any click: the shipped run, every curve, on sensible axes.
        at_load = wait_for(lambda: (c := loss_points(page)) and all(c.get(n, 0) > 0 for n in (*CURVES, SHARED)) and c,
                           30, "the shipped class run's curves before any click")
        problems = absurd_axes(plotted_axes(page))
        assert not problems, problems
        page.screenshot(path=str(artifact("dashboard-class-at-load.png")), full_page=True)
        assert_no_traceback(page)
        if not _shipped_switch_checkpoints():
            pytest.skip("no shipped switch-point checkpoint (data/runs/**/*.npz) yet: a class run would replay "
                        "its 2,000 steps before the switch instead of starting there")

        # Run: the old curves go, the shared history comes back at once, post-switch points follow in budget.
        budget = float(os.environ.get("SUBSPACE_KIT_LIVE_BUDGET_S", "90"))
        run.click()
        start = time.monotonic()
        wait_for(lambda: loss_points(page).get("Dom-SGD", 0) < at_load["Dom-SGD"], 30, "the shipped curves cleared")
        live = wait_for(lambda: (c := loss_points(page)) and all(c.get(n, 0) >= 3 for n in CURVES) and c,
                        budget, f"post-switch points in all three curves within {budget:.0f} s")
        elapsed = time.monotonic() - start
        assert live.get(SHARED, 0) > 0  # the shared history is drawn, not waited for
        problems = absurd_axes(plotted_axes(page))
        assert not problems, problems
        page.screenshot(path=str(artifact("dashboard-class-live.png")), full_page=True)
        page.locator(".subspace-kit-stop").click()
        wait_for(lambda: "Stopped" in _status(page) or "Finished" in _status(page), 120, "the run to stop")
        print(f"first post-switch points in all three curves after {elapsed:.0f} s")
