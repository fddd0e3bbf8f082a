"""Notebook widgets: live curves, Run/Stop panels and the main-experiment dashboard.

- ``LiveCurves``: plotly ``FigureWidget`` curves (one per mode), updated in throttled batches.
- ``RunPanel``: Run/Stop around any row generator, run in a background thread
  (``run_blocking()`` for headless execution), readable messages instead of tracebacks.
- ``experiment_controls``: inputs for the experiment's settings.
- ``EngineSource`` / ``load_source``: rows from the kit's experiment engine (or another source).
- ``experiment_dashboard``: all of the above for the SGD / Dom-SGD / Bulk-SGD experiment.
- ``show`` / ``show_snapshot``: a figure with a static PNG beside it, for exports.
- ``Prediction``, ``which_keeps_training``, ``bulk_throws_away``: predict, then see the measurement.
"""
from .controls import experiment_controls
from .dashboard import experiment_dashboard
from .live_curves import MODE_LABELS, PANELS, LiveCurves
from .messages import RunOutcome, describe_error
from .run_panel import RunPanel
from .predict import Prediction, bulk_throws_away, which_keeps_training
from .sources import EngineSource, load_source
from .static import show, show_snapshot

__all__ = ["LiveCurves", "PANELS", "MODE_LABELS", "RunPanel", "RunOutcome", "describe_error",
           "experiment_controls", "EngineSource", "load_source", "experiment_dashboard", "show", "show_snapshot",
           "Prediction", "which_keeps_training", "bulk_throws_away"]
