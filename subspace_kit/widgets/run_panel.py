"""Run and Stop buttons around a row generator, with live curves; the kernel never freezes.

``RunPanel(make_rows, controls, curves)``: ``make_rows(settings, stop)`` is any callable that
returns an iterator of metric rows (dicts with ``step``, ``phase``, ``mode`` and metrics) and
ends when finished or soon after the ``threading.Event`` ``stop`` is set; a generator may
``return`` a summary dict (``{"status": ..., "message": ...}``). ``settings`` is
``{name: widget.value}`` over ``controls``.

Pressing Run starts the generator in a background thread (the kernel stays free to handle
clicks), disables the controls, and streams rows to the curves. A click on Run while a run is in
flight does nothing. Stop ends the run and keeps what was computed. Rejected settings, a
diverged curve or any error end in a readable message on the page, and the controls come back.

Without a page (papermill, nbclient, a script) ``run_blocking()`` does the same in the calling
thread and returns a ``RunOutcome``.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterator, Mapping

import ipywidgets as widgets

from .live_curves import LiveCurves, is_finite
from .messages import RunOutcome, describe_error, message_html

log = logging.getLogger(__name__)

MakeRows = Callable[[dict, threading.Event], Iterator[dict]]


class RunPanel:
    """Controls, Run/Stop buttons, a status line, a message box and live curves.

    Display it as the last expression of a cell (or ``display(panel.widget)``).
    """

    def __init__(self, make_rows: MakeRows, controls: Mapping[str, widgets.ValueWidget] | None = None,
                 curves: LiveCurves | None = None, *, status_every_s: float = 0.5):
        self.make_rows = make_rows
        self.controls = dict(controls or {})
        self.curves = curves if curves is not None else LiveCurves()
        self.status_every_s = status_every_s
        self.run_button = widgets.Button(description="Run", button_style="success", icon="play",
                                         tooltip="Start a run with these settings")
        self.stop_button = widgets.Button(description="Stop", button_style="warning", icon="stop", disabled=True,
                                          tooltip="Stop the run; the curves so far are kept")
        self.status = widgets.HTML(value="Ready: choose the settings and press Run.")
        self.message = widgets.HTML(value="")
        for w, name in ((self.run_button, "run"), (self.stop_button, "stop"), (self.status, "status"),
                        (self.message, "message-box")):
            w.add_class(f"subspace-kit-{name}")
        self.run_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        grid = widgets.GridBox(list(self.controls.values()),
                               layout=widgets.Layout(grid_template_columns="repeat(auto-fill, minmax(250px, 1fr))",
                                                     grid_gap="4px 16px"))
        self.widget = widgets.VBox([grid, widgets.HBox([self.run_button, self.stop_button, self.status]),
                                    self.message, self.curves.figure])
        self.widget.add_class("subspace-kit-run-panel")
        self.outcome: RunOutcome | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._busy = False

    # ------------------------------------------------------------------ public
    @property
    def running(self) -> bool:
        """A run is in flight (in the background thread or in ``run_blocking``)."""
        return self._busy

    def settings(self) -> dict:
        """``{name: value}`` of the controls, as the row generator receives them."""
        return {name: w.value for name, w in self.controls.items()}

    def start(self, settings: dict | None = None) -> bool:
        """Start a run in a background thread; ``False`` (and nothing happens) if one is running."""
        with self._lock:
            if self.running:
                return False
            settings = self.settings() if settings is None else settings
            self._begin()
            self._thread = threading.Thread(target=self._run_in_thread, args=(settings, self._stop),
                                            name="subspace-kit-run", daemon=True)
            self._thread.start()
            return True

    def stop(self) -> None:
        """Ask the run to stop; it ends at its next row, keeping what it computed."""
        if self.running:
            self._stop.set()
            self.status.value = "Stopping…"

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background run to end; ``True`` if none is running any more."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    def run_blocking(self, settings: dict | None = None, *, check: bool = True) -> RunOutcome:
        """Run in this thread (for papermill/CI, where no page clicks Run) and return the outcome.

        ``check``: raise ``RuntimeError`` (with the page's message) unless the run completed or
        was stopped, so a headless notebook run fails loudly.
        """
        with self._lock:
            if self.running:
                raise RuntimeError("a run is already in progress")
            self._begin()
        outcome = self._execute(self.settings() if settings is None else settings, self._stop)
        if check and not outcome.ok:
            raise RuntimeError(outcome.message) from outcome.error
        return outcome

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    # ------------------------------------------------------------------ internals
    def _begin(self) -> None:
        self._stop = threading.Event()
        self.outcome = None
        self._set_busy(True)
        self.message.value = ""
        self.status.value = "Starting…"
        self.curves.reset()

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        for w in self.controls.values():
            w.disabled = busy
        self.run_button.disabled = busy
        self.stop_button.disabled = not busy

    def _run_in_thread(self, settings: dict, stop: threading.Event) -> None:
        try:
            self._execute(settings, stop)
        except BaseException:  # never let a thread die silently with the controls disabled
            log.exception("run panel thread failed")
            self._set_busy(False)

    def _execute(self, settings: dict, stop: threading.Event) -> RunOutcome:
        rows, last_step, diverged, summary = 0, None, {}, None
        last_status = 0.0
        try:
            iterator = iter(self.make_rows(dict(settings), stop))
            while True:
                try:
                    row = next(iterator)
                except StopIteration as end:
                    summary = end.value if isinstance(end.value, dict) else None
                    break
                loss = row.get("train_loss")
                if loss is not None and not is_finite(loss):
                    diverged.setdefault(row.get("mode"), row.get("step"))
                    continue
                self.curves.add(row)
                rows += 1
                last_step = row.get("step", last_step)
                if time.monotonic() - last_status >= self.status_every_s:
                    last_status = time.monotonic()
                    self.status.value = f"Running… step {last_step}" + ("" if not stop.is_set() else " (stopping)")
            outcome = self._ending(summary, stop.is_set(), diverged, rows, last_step)
        except Exception as exc:  # the page shows a sentence; the traceback goes to the log only
            log.debug("run failed", exc_info=True)
            status, text = describe_error(exc)
            outcome = RunOutcome(status, text, rows, last_step, exc)
        finally:
            self.curves.flush(final=True)
        self._finish(outcome)
        return outcome

    def _ending(self, summary, stopped, diverged, rows, last_step) -> RunOutcome:
        status = (summary or {}).get("status")
        text = (summary or {}).get("message") or ""
        if diverged and status != "diverged":
            status = "diverged"
            text = " ".join(f"{self.curves.labels.get(m, m)} diverged at step {s}: its training loss became "
                            f"non-finite." for m, s in diverged.items())
        if status == "diverged":
            text = (text or "A curve diverged.") + " Try a smaller learning rate."
        elif stopped or status == "stopped":
            status = "stopped"
            if last_step is None:
                text = "Stopped before the first step was logged. Press Run to start again."
            else:
                text = (f"Stopped at step {last_step}; the curves so far are kept. Press Run to continue or "
                        "start again.")
        else:
            status = status or "completed"
        return RunOutcome(status, text, rows, last_step)

    def _finish(self, outcome: RunOutcome) -> None:
        with self._lock:  # a Run click waits until the page shows this run's end
            self._show_outcome(outcome)

    def _show_outcome(self, outcome: RunOutcome) -> None:
        self.outcome = outcome
        counts = ", ".join(f"{name} {n}" for name, n in self.curves.point_counts().items() if n)
        headline = {"completed": "Finished", "stopped": "Stopped", "diverged": "Diverged",
                    "invalid": "Not started", "failed": "Failed"}.get(outcome.status, outcome.status)
        self.status.value = f"{headline}." + (f" Points: {counts}." if counts else "")
        kind = {"completed": "success", "stopped": "info", "diverged": "warning"}.get(outcome.status, "error")
        self.message.value = message_html(outcome.message, kind)
        self._set_busy(False)

