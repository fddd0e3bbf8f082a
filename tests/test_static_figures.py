"""Figures survive export: ``show`` leaves a PNG beside the plotly JSON, and nbconvert's HTML
(what a handout, GitHub or a PDF is made from) shows it as an image."""
from __future__ import annotations

import base64
from pathlib import Path

import nbformat
import pytest

from subspace_kit.experiment.figures import headline_figure
from subspace_kit.widgets.static import bundle, png_bytes, to_matplotlib

REPO = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


def test_static_copy_draws_every_visible_line_on_its_own_axes(class_run):
    fig = headline_figure(class_run)
    mfig = to_matplotlib(fig)
    axes = sorted(mfig.get_axes(), key=lambda ax: ax.get_position().x0)  # left to right, as in plotly
    assert len(axes) == 2
    assert axes[1].get_yscale() == "log" and axes[0].get_yscale() == "linear"
    drawn = {line.get_label() for ax in axes for line in ax.get_lines()}
    assert {"SGD", "Dom-SGD", "Bulk-SGD", "SGD before the switch (shared)"} <= drawn
    assert [t.get_text() for t in axes[1].get_yticklabels()] == [str(t) for t in fig.layout.yaxis2.ticktext]


def test_bundle_holds_plotly_json_and_a_png(class_run):
    out = bundle(headline_figure(class_run))
    assert out["application/vnd.plotly.v1+json"]["data"]
    assert base64.b64decode(out["image/png"])[:8] == PNG
    assert png_bytes(headline_figure(class_run))[:8] == PNG


def _images(nb) -> int:
    """PNG images in nbconvert's HTML of ``nb``, beyond those of the page template itself."""
    from nbconvert import HTMLExporter

    def count(node):
        return HTMLExporter().from_notebook_node(node)[0].count("data:image/png;base64,")

    return count(nb) - count(nbformat.v4.new_notebook())


def test_nbconvert_html_shows_the_figure_as_an_image(class_run):
    out = bundle(headline_figure(class_run))
    cell = nbformat.v4.new_code_cell("show(fig)", outputs=[nbformat.v4.new_output("display_data", data=out)])
    assert _images(nbformat.v4.new_notebook(cells=[cell])) == 1


@pytest.mark.notebooks
@pytest.mark.slow
def test_executed_welcome_notebook_exports_its_figures_as_images(tmp_path):
    papermill = pytest.importorskip("papermill")
    path = REPO / "notebooks" / "01_welcome.ipynb"
    out = tmp_path / path.name
    papermill.execute_notebook(str(path), str(out), parameters={"SMOKE": True}, cwd=str(path.parent),
                               kernel_name="python3", execution_timeout=600, progress_bar=False)
    nb = nbformat.read(out, as_version=4)
    plotly_outputs = sum("application/vnd.plotly.v1+json" in o.get("data", {})
                         for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert plotly_outputs >= 2  # the headline and the three-panel figure
    assert _images(nb) >= plotly_outputs


def test_numpy_traces_and_log_axes_are_drawn():
    import numpy as np
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=np.arange(5), y=np.array([1e-3, 1e-2, 1e-1, 1.0, np.nan]), name="a"))
    fig.update_yaxes(type="log")
    ax = to_matplotlib(fig).get_axes()[0]
    assert ax.get_yscale() == "log" and len(ax.get_lines()[0].get_ydata()) == 5
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.001", "0.01", "0.1", "1"]


SHOW_CODE = """from subspace_kit import paths
from subspace_kit.experiment import RunStore
from subspace_kit.experiment.figures import headline_figure
from subspace_kit.widgets import show

show(headline_figure(RunStore.load_path(paths.shipped_runs() / "0655fedbf94c8d43")))"""


@pytest.mark.browser
@pytest.mark.slow
def test_show_stays_interactive_in_voila(tmp_path, class_run):
    """The PNG is only the fallback: in a page that can draw plotly (Voila, JupyterLab) the output
    goes to plotly's own renderer, which shows the PNG at once and swaps in the interactive figure,
    with its traces, when the pointer comes over it."""
    from browser_helpers import (BIN, chromium_page, env_with_tests_on_path, explain_failure, free_port,
                                 require_chromium, server, wait_for)

    require_chromium()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SHOW_CODE)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "show.ipynb")
    port = free_port()
    cmd = [str(BIN / "voila"), "show.ipynb", f"--port={port}", "--Voila.ip=127.0.0.1", "--no-browser"]
    ready = f"http://127.0.0.1:{port}/voila/labextensions/anywidget/package.json"
    with server(cmd, ready, cwd=tmp_path, env=env_with_tests_on_path(), log=tmp_path / "voila.log", timeout=120), \
            chromium_page() as page, explain_failure(page, "voila-show"):
        page.goto(f"http://127.0.0.1:{port}/", timeout=180_000)
        image = page.locator(".jp-RenderedPlotly img.plot-img")  # plotly's renderer, not the plain image one
        image.wait_for(state="visible", timeout=180_000)
        image.dispatch_event("mouseenter")  # what a pointer coming over it sends
        names = wait_for(lambda: page.evaluate(
            "() => Array.from(document.querySelectorAll('.js-plotly-plot')).flatMap(gd => (gd.data || []).map(t => t.name))"),
            120, "the interactive headline figure")
        assert {"SGD", "Dom-SGD", "Bulk-SGD"} <= set(names)
