"""JupyterLab in a real browser: a notebook opens, runs, and the kit's widgets render and update.

JupyterLab is served on 127.0.0.1 (token off, a throw-away config and workspace), a small
notebook with the dashboard panel on the fake row source is run through Lab's own "run all
cells" command, and the page must show the Run button and a plot that already holds the cached
curves; pressing Run must then make new points arrive in the page.
"""
from __future__ import annotations

import nbformat
import pytest

from browser_helpers import (BIN, artifact, assert_no_traceback, chromium_page, env_with_tests_on_path,
                             explain_failure, free_port, loss_points, require_chromium, server, wait_for)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOK_CODE = """from fake_run import FakeSource
from subspace_kit.widgets import experiment_dashboard

panel = experiment_dashboard(FakeSource(delay=0.005))
panel"""
APP_READY_JS = """() => {
  const app = window.jupyterapp;
  const w = app && app.shell.currentWidget;
  return !!(w && w.sessionContext && w.content && w.content.widgets && w.content.widgets.length);
}"""
RUN_ALL_JS = """async () => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  await panel.context.ready;
  await panel.sessionContext.ready;
  await app.commands.execute('notebook:run-all-cells');
  return true;
}"""


@pytest.fixture
def lab_url(tmp_path):
    require_chromium()
    root = tmp_path / "lab"
    root.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(NOTEBOOK_CODE)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "widgets.ipynb")
    port = free_port()
    env = env_with_tests_on_path(**{name: str(tmp_path / sub) for name, sub in (
        ("JUPYTER_CONFIG_DIR", "config"), ("JUPYTERLAB_SETTINGS_DIR", "settings"),
        ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"), ("JUPYTER_RUNTIME_DIR", "runtime"))})
    cmd = [str(BIN / "jupyter"), "lab", "--allow-root", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--IdentityProvider.token=",
           "--ServerApp.password=", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    with server(cmd, f"http://127.0.0.1:{port}/api/status", cwd=root, env=env, log=tmp_path / "lab.log",
                timeout=120):
        yield f"http://127.0.0.1:{port}/lab/tree/widgets.ipynb"


def test_notebook_runs_in_jupyterlab_with_widgets_rendering(lab_url):
    with chromium_page() as page, explain_failure(page, "lab"):
        page.goto(lab_url, timeout=120_000)
        wait_for(lambda: page.evaluate(APP_READY_JS), 120, "JupyterLab to open the notebook")
        page.evaluate(RUN_ALL_JS)

        page.locator(".subspace-kit-run-panel").wait_for(state="visible", timeout=120_000)
        run = page.locator(".subspace-kit-run")
        assert run.inner_text().strip() == "Run"
        page.locator(".js-plotly-plot").first.wait_for(state="visible", timeout=60_000)
        cached = wait_for(lambda: (c := loss_points(page)) and c.get("SGD", 0) > 0 and c, 30,
                          "the cached curves in the plot")

        run.click()
        wait_for(lambda: "Running" in page.inner_text(".subspace-kit-status"), 120, "the run to start")
        grown = wait_for(lambda: (c := loss_points(page)) and c.get("SGD", 0) > cached["SGD"] and c, 120,
                         "new points from the run to reach the page")
        assert grown.get("Bulk-SGD", 0) > 0
        page.locator(".subspace-kit-stop").click()
        wait_for(lambda: "Stopped" in page.inner_text(".subspace-kit-status"), 60, "the status to say Stopped")
        page.screenshot(path=str(artifact("lab-widgets.png")))
        assert_no_traceback(page)
