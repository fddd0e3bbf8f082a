"""Static checks of the class notebooks (05–08, 15): they teach from themselves, pose questions
before results, let students commit a prediction without blocking a headless run, and have an
exercise checked by ``exercises.check`` with a folded solution. (Executing them: test_notebooks.py.)"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CLASS = ["05_ill_conditioned_valley", "06_noisy_quadratic", "07_noise_is_the_cause", "08_edge_of_stability",
         "15_class_experiment"]


def cells(name):
    nb = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
    return [(c["cell_type"], "".join(c["source"]), c.get("metadata", {}).get("tags", [])) for c in nb["cells"]]


@pytest.mark.parametrize("name", CLASS)
def test_notebook_teaches_from_itself_not_from_a_file_outside_the_repository(name):
    text = "\n".join(src for kind, src, _ in cells(name) if kind == "markdown")
    assert "BRIEF.md" not in text and "shared/paper" not in text


@pytest.mark.parametrize("name", CLASS)
def test_opening_poses_questions_and_the_notebook_has_a_checked_exercise_with_a_folded_solution(name):
    found = cells(name)
    kind, opening, _ = found[0]
    assert kind == "markdown" and opening.startswith("# ") and "**What you will see:**" in opening
    assert opening.count("?") >= 2, "the opening should pose the questions, not announce the outcome"
    assert found[1][2] == ["parameters"] and "SMOKE = False" in found[1][1]
    assert any(kind == "code" and re.search(r"\bcheck\(", src) for kind, src, _ in found)
    assert any(kind == "markdown" and "<summary>Solution</summary>" in src for kind, src, _ in found)
    assert "## What to remember" in found[-1][1]


def test_valley_prediction_defaults_to_none_so_a_headless_run_never_waits():
    params = cells("05_ill_conditioned_valley")[1][1]
    assert re.search(r"^PREDICTION = None\b", params, re.M)
    assert re.search(r"^PREDICTED_FRACTION = None\b", params, re.M)


def test_no_typed_eigenvalue_ranges_in_the_noise_notebook():
    # 07 once said "top eigenvalues 60–110, smaller ones ≈ 60" while the runs gave λ10 = 32 → 46:
    # numbers about a run are rendered from it (Markdown built in code), not typed into Markdown.
    text = "\n".join(src for kind, src, _ in cells("07_noise_is_the_cause") if kind == "markdown")
    assert not re.search(r"\b\d{2,3}\s*[–-]\s*\d{2,3}\b", text)
    assert "≈ 60" not in text and "≈ 0.9" not in text
