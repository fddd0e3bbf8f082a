"""Predict before you see: a question, the student's committed answer, then the measurement.

``Prediction`` shows a question with a choice (``options``) or a number (``number_range``) and a
**Reveal** button; the reveal compares the committed answer with ``measure()`` — a value
computed from a run, never typed in. Headless (papermill, "Run all"), pass ``prediction=…``
to reveal at once, or leave it ``None``: nothing blocks and the reveal says no prediction was
made.

Two questions about the switch experiment are built in, measured from a ``RunResult``:
``which_keeps_training(result)`` and ``bulk_throws_away(result)``.
"""
from __future__ import annotations

import html
import math
from typing import Callable, Sequence

import ipywidgets as widgets

from ..experiment.figures import headline_curves
from .messages import message_html

KEEPS_TRAINING = 0.5  # a copy "keeps training" if it makes at least half of SGD's decrease after the switch


class Prediction:
    """A question, an input for the answer, and a Reveal button (``self.widget``).

    ``measure()`` returns the measured answer (an option for a choice, a number otherwise);
    ``explain(measured)`` returns a sentence shown with it. ``tolerance``: how far a numeric
    prediction may be off and still count as right.
    """

    def __init__(self, question: str, measure: Callable[[], object], *, options: Sequence[str] | None = None,
                 number_range: tuple[float, float, float] | None = None, tolerance: float = 0.1,
                 explain: Callable[[object], str] | None = None, prediction=None):
        if (options is None) == (number_range is None):
            raise ValueError("give exactly one of options (a choice) or number_range=(min, max, step)")
        self.question, self.measure, self.tolerance = question, measure, tolerance
        self.explain = explain or (lambda measured: "")
        self.options = list(options) if options is not None else None
        if self.options is not None:
            if prediction is not None and prediction not in self.options:
                raise ValueError(f"prediction must be one of {self.options}, got {prediction!r}")
            self.input = widgets.RadioButtons(options=self.options, value=None, layout=widgets.Layout(width="auto"))
        else:
            lo, hi, step = number_range
            self.input = widgets.FloatSlider(value=lo, min=lo, max=hi, step=step, readout_format=".2f",
                                             continuous_update=False, layout=widgets.Layout(width="420px"))
        self.button = widgets.Button(description="Reveal", button_style="info", icon="eye",
                                     tooltip="Commit your prediction and see the measurement")
        self.result = widgets.HTML(value="")
        self.button.on_click(lambda _: self.reveal())
        self.widget = widgets.VBox([widgets.HTML(f"<b>{html.escape(question)}</b>"), self.input, self.button,
                                    self.result])
        self.widget.add_class("subspace-kit-prediction")
        self.revealed_text: str | None = None
        if prediction is not None:
            self.input.value = prediction
            self.reveal()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def reveal(self, prediction=None) -> str:
        """Compare the committed prediction (the input's value, or ``prediction``) with the
        measurement; shows and returns the sentence. Disables the input: the answer is committed."""
        if prediction is not None:
            self.input.value = prediction
        guess = self.input.value
        try:
            measured = self.measure()
        except Exception as exc:  # e.g. the cells that measure have not run yet: say so, never a traceback
            text = f"Nothing measured yet ({type(exc).__name__}: {exc}). Run the cells below, then press Reveal."
            self.revealed_text, self.result.value = text, message_html(text, "info")
            return text
        text, kind = self.compare(guess, measured)
        self.revealed_text = text
        self.result.value = message_html(text, kind)
        self.input.disabled = self.button.disabled = guess is not None
        return text

    def compare(self, guess, measured) -> tuple[str, str]:
        """``(sentence, kind)`` for a guess against the measurement."""
        why = self.explain(measured)
        why = f" {why}" if why else ""
        if guess is None:
            return f"No prediction made. Measured: {_fmt(measured)}.{why}", "info"
        if self.options is not None:
            right = guess == measured
        else:
            right = abs(float(guess) - float(measured)) <= self.tolerance
        verdict = "Right" if right else "Not quite"
        return f"{verdict}: you predicted {_fmt(guess)}; measured: {_fmt(measured)}.{why}", \
            "success" if right else "warning"


def _fmt(value) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------------- the built-in questions
def progress_after_switch(result) -> dict[str, float]:
    """Each mode's loss decrease after the switch as a fraction of SGD's (1 = as much as SGD)."""
    curves = headline_curves(result)["modes"]
    ends = {m: c["relative"][1][-1] for m, c in curves.items() if c["relative"][1]}
    sgd = 1.0 - ends.get("none", math.nan)
    if not sgd > 0:
        return {m: math.nan for m in ends}
    return {m: (1.0 - end) / sgd for m, end in ends.items()}


TRAINING_OPTIONS = ("Dom-SGD", "Bulk-SGD", "both", "neither")


def which_keeps_training(result, prediction=None) -> Prediction:
    """"Which will keep training, Dom-SGD or Bulk-SGD?", measured on ``result`` (a copy keeps
    training when it makes at least half of SGD's loss decrease after the switch)."""
    def measure():
        progress = progress_after_switch(result)
        trains = [progress.get(m, math.nan) >= KEEPS_TRAINING for m in ("dom", "bulk")]
        return {(True, False): "Dom-SGD", (False, True): "Bulk-SGD", (True, True): "both"}.get(tuple(trains), "neither")

    def explain(_):
        progress = progress_after_switch(result)
        return ("After the switch Dom-SGD made {:.0%} of SGD's loss decrease and Bulk-SGD {:.0%}."
                .format(progress.get("dom", math.nan), progress.get("bulk", math.nan)))

    return Prediction("After the switch, which copy keeps lowering the training loss: Dom-SGD (only the part of "
                      "each step inside the dominant subspace) or Bulk-SGD (everything but that part)?",
                      measure, options=TRAINING_OPTIONS, explain=explain, prediction=prediction)


def mean_removed_fraction(result) -> float:
    """Mean ‖P_k g‖ / ‖g‖ (= χ_k(g)) of the minibatch gradient in the Bulk-SGD branch after the
    switch: the share of the gradient's norm that Bulk-SGD throws away."""
    values = [r.get("alignment_batch") for r in result.rows if r["phase"] == "main" and r["mode"] == "bulk"]
    values = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not values:
        raise ValueError(f"run {result.path} has no alignment_batch values in its Bulk-SGD branch")
    return sum(values) / len(values)


def bulk_throws_away(result, prediction=None) -> Prediction:
    """"What fraction of the gradient's norm does Bulk throw away?", measured on ``result``."""
    def explain(measured):
        return (f"That is the mean of χ_k(g) = ‖P_k g‖ / ‖g‖ over Bulk-SGD's steps after the switch; the step "
                f"Bulk-SGD keeps is about √(1 − {measured:.2f}²) = {math.sqrt(max(0.0, 1 - measured**2)):.2f} of "
                f"the gradient's norm.")

    return Prediction("What fraction of the minibatch gradient's norm, ‖P_k g‖ / ‖g‖, does Bulk-SGD throw away "
                      "at each step?", lambda: mean_removed_fraction(result), number_range=(0.0, 1.0, 0.05),
                      tolerance=0.1, explain=explain, prediction=prediction)
