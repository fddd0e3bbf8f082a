"""The main experiment as one panel: settings, Run/Stop, live SGD / Dom-SGD / Bulk-SGD curves.

``experiment_dashboard(source)`` is what ``notebooks/dashboard.ipynb`` (the Voila page) and the
main-experiment notebook show. If the run store already holds a run for the starting settings,
the curves open with it (the user's store, else the runs that ship with the kit: the ``class``
preset's run is drawn before any click): the figure is built with those rows, so they are on the page as soon as
it loads (see ``live_curves`` on the Voila trap).
"""
from __future__ import annotations

from .controls import experiment_controls
from .live_curves import LiveCurves
from .run_panel import RunPanel
from .sources import load_source


def experiment_dashboard(source=None, *, settings: dict | None = None,
                         panels=("train_loss", "alignment_full"), modes=("none", "dom", "bulk"),
                         max_updates_per_s: float = 4.0, headline: bool = True) -> RunPanel:
    """A ``RunPanel`` for the switch experiment.

    ``source``: a row source (see ``sources``; ``None``: the kit's engine with the ``class``
    preset). ``settings``: values that replace the source's defaults in the controls.
    ``panels``: metric columns plotted, one subplot each. ``headline``: the first row is the
    headline figure's layout (loss ÷ loss at the switch beside the whole run's loss), growing
    as the run goes.
    """
    source = load_source() if source is None else source
    start = {**source.defaults(), **(settings or {})}
    stored = source.cached_rows(start)
    curves = LiveCurves(stored, modes=modes, panels=panels, max_updates_per_s=max_updates_per_s, headline=headline)
    panel = RunPanel(source.make_rows, experiment_controls(start), curves)
    if stored:
        panel.status.value = "Showing the stored run of these settings: press Run to compute it here, live."
    return panel
