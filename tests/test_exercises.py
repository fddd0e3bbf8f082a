"""``exercises.check`` never shows the expected value before the answer is right (or the student
asks for it), and ``check_projection`` grades a student's g − U(Uᵀg) without giving it away."""
from __future__ import annotations

import pytest

from subspace_kit.exercises import check, check_projection, projection_verdict, verdict

EXPECTED = 0.0975  # a value whose digits would be recognisable in a message


def _shows_value(text: str) -> bool:
    return "0.0975" in text or "0.098" in text


def test_unanswered_check_does_not_show_the_expected_value_but_gives_the_hint():
    v = verdict("bulk share", None, EXPECTED, hint="the two parts are orthogonal")
    assert v.ok is None and not v.revealed
    assert not _shows_value(v.text)
    assert "replace None" in v.text and "orthogonal" in v.text and "5.0%" in v.text


def test_wrong_answer_says_not_yet_and_which_side_without_the_value():
    high, low = verdict("x", 0.2, EXPECTED), verdict("x", 0.05, EXPECTED)
    assert high.ok is False and low.ok is False
    assert "too high" in high.text and "too low" in low.text
    assert not _shows_value(high.text) and not _shows_value(low.text)
    assert not high.revealed


def test_right_answer_within_tolerance_reveals_the_expected_value():
    v = verdict("x", 0.1, EXPECTED, rtol=0.05)
    assert v.ok is True and v.revealed and _shows_value(v.text)
    assert verdict("x", 0.1, EXPECTED, rtol=0.01).ok is False  # 2.6 % off: outside a 1 % tolerance


def test_show_solution_reveals_the_value_even_without_an_answer():
    v = verdict("x", None, EXPECTED, show_solution=True)
    assert v.revealed and _shows_value(v.text)


def test_check_prints_the_same_verdict_outside_a_notebook(capsys):
    assert check("bulk share", None, EXPECTED) is None
    assert check("bulk share", 0.5, EXPECTED) is False
    out = capsys.readouterr().out
    assert "not answered yet" in out and "not yet" in out and not _shows_value(out)
    assert check("bulk share", 0.0975, EXPECTED) is True
    assert _shows_value(capsys.readouterr().out)


def test_non_numeric_answers_compare_by_equality():
    assert verdict("which", "Bulk-SGD", "Bulk-SGD").ok is True
    wrong = verdict("which", "Dom-SGD", "Bulk-SGD")
    assert wrong.ok is False and "Bulk-SGD" not in wrong.text


def test_negative_tolerance_is_refused_with_its_name():
    with pytest.raises(ValueError, match="rtol"):
        verdict("x", 1.0, 1.0, rtol=-1)


def test_projection_check_accepts_the_bulk_projection():
    assert projection_verdict(lambda g, U: g - U @ (U.T @ g)).ok is True
    assert check_projection(lambda g, U: g - U @ (U.T @ g), show=False) is True


@pytest.mark.parametrize("fn, says", [
    (None, "not answered yet"),
    (lambda g, U: None, "returns None"),
    (lambda g, U: "g", "returned a str"),
    (lambda g, U: U @ (U.T @ g), "dominant part"),
    (lambda g, U: g, "unchanged"),
    (lambda g, U: g - U @ U.T, "shape"),
    (lambda g, U: g - U.T @ (U @ g), "raised RuntimeError"),
    (lambda g, U: g - 0.5 * U @ (U.T @ g), "not orthogonal"),
])
def test_projection_check_names_the_mistake_without_the_expected_vector(fn, says):
    v = projection_verdict(fn)
    assert v.ok in (None, False) and not v.revealed
    assert says in v.text, v.text
    assert "tensor(" not in v.text  # no vector printed


def test_vector_with_alignment_has_the_alignment_asked_for():
    from subspace_kit import alignment
    from subspace_kit.exercises import vector_with_alignment

    g, U = vector_with_alignment(0.95)
    assert alignment(g, U) == pytest.approx(0.95, abs=1e-9)
    with pytest.raises(ValueError, match="chi"):
        vector_with_alignment(1.5)


def test_alignment_check_accepts_chi_and_names_the_usual_mistakes():
    import torch

    from subspace_kit.exercises import alignment_verdict, check_alignment

    assert check_alignment(lambda v, U: torch.linalg.vector_norm(U.T @ v) / torch.linalg.vector_norm(v),
                           show=False) is True
    squared = alignment_verdict(lambda v, U: (torch.linalg.vector_norm(U.T @ v) / torch.linalg.vector_norm(v)) ** 2)
    assert squared.ok is False and "square root" in squared.text
    unnormalised = alignment_verdict(lambda v, U: torch.linalg.vector_norm(U.T @ v))
    assert unnormalised.ok is False and "divide by" in unnormalised.text
    assert alignment_verdict(lambda v, U: None).ok is None
