"""Predict before you see: the reveal compares a committed prediction with the measurement
from the run (not a typed-in answer), and never blocks headless."""
from __future__ import annotations

import pytest

pytest.importorskip("ipywidgets")
from subspace_kit.experiment import RunStore  # noqa: E402
from subspace_kit.widgets.predict import (Prediction, bulk_throws_away, mean_removed_fraction,  # noqa: E402
                                          progress_after_switch, which_keeps_training)


def test_which_keeps_training_is_measured_from_the_run(class_run):
    progress = progress_after_switch(class_run)
    assert progress["none"] == pytest.approx(1.0) and progress["dom"] < 0.25 < 0.75 < progress["bulk"]
    right = which_keeps_training(class_run, prediction="Bulk-SGD")
    assert right.revealed_text.startswith("Right") and right.input.disabled
    wrong = which_keeps_training(class_run, prediction="Dom-SGD")
    assert wrong.revealed_text.startswith("Not quite") and "measured: Bulk-SGD" in wrong.revealed_text


def test_the_measurement_follows_the_data_not_a_fixed_answer(class_run):
    swapped = RunStore.load_path(class_run.path)
    for row in swapped.rows:  # relabel: now the Dom branch has Bulk's losses and vice versa
        if row["phase"] == "main" and row["mode"] in ("dom", "bulk"):
            row["mode"] = "bulk" if row["mode"] == "dom" else "dom"
    assert which_keeps_training(swapped, prediction="Dom-SGD").revealed_text.startswith("Right")


def test_fraction_question_compares_within_its_tolerance(class_run):
    measured = mean_removed_fraction(class_run)
    assert 0 < measured < 1
    close = bulk_throws_away(class_run, prediction=round(measured, 1))
    far = bulk_throws_away(class_run, prediction=0.0 if measured > 0.5 else 1.0)
    assert close.revealed_text.startswith("Right") and far.revealed_text.startswith("Not quite")
    assert f"{measured:.2f}" in far.revealed_text


def test_no_prediction_reveals_without_blocking_and_keeps_the_input_open(class_run):
    question = which_keeps_training(class_run)
    assert question.revealed_text is None  # nothing shown before a reveal
    text = question.reveal()
    assert text.startswith("No prediction made") and not question.input.disabled


def test_a_prediction_outside_the_options_is_refused():
    with pytest.raises(ValueError, match="prediction must be one of"):
        Prediction("?", lambda: "a", options=["a", "b"], prediction="c")


def test_reveal_before_anything_was_measured_says_so_and_keeps_the_answer_open():
    def not_yet():
        raise NameError("name 'measured' is not defined")

    p = Prediction("Which keeps training?", not_yet, options=["dom", "bulk"])
    p.input.value = "bulk"
    text = p.reveal()
    assert "Nothing measured yet" in text and "Run the cells below" in text
    assert not p.input.disabled and not p.button.disabled  # the student can still reveal later
