"""Static checks of the notebooks (nothing is executed):

- no function is defined in two notebooks, and no notebook defines a function whose name the
  package exports (a module-level function or class of ``subspace_kit``, or a public attribute of
  ``RunResult``, the results API): analysis lives in the package, once. A teaching notebook may
  write its own version on purpose: a cell containing the marker ``# student version`` is exempt;
- the words of notebooks 09–13 do not contradict the claims tables of their runs: a sentence of a
  Markdown cell that asserts a verdict ("Dom-SAM stalls", "keeps pace", "largely aligned") is
  allowed only when every run of that notebook has the verdict "yes" for that claim; sentences
  that ask or report the paper's view ("whether …", "…?", "the paper reports …") are not
  assertions about a run. Verdicts about runs belong in Markdown built from the claims in code;
- notebooks teach from themselves: no reference to a brief outside the repository.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
import re
from collections import defaultdict
from pathlib import Path

import pytest

import subspace_kit
from subspace_kit.experiment import RunResult

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
MARKER = "# student version"

# Notebooks whose prose is checked against their runs, and the shipped runs each one shows: names
# of the kit's list of cached runs, or presets (``"preset:NAME"``).
NOTEBOOK_RUNS = {
    "09_sam": ["sam"],
    "10_momentum_and_adam": ["momentum", "adam", "momentum_gradient", "adam_gradient"],
    "11_beyond_the_paper": ["sgd"],
    "12_cross_entropy": ["cross_entropy"],
    "13_other_models": ["cnn", "preset:cnn-class", "preset:transformer-class"],
    "08_edge_of_stability": ["eos"],
    "01_welcome": ["class"],
    "03_gradients_in_a_tiny_subspace": ["class"],
    "04_does_sgd_happen_there": ["class", "reference"],
    "14_where_to_go_next": ["class", "reference"],
    "07_noise_is_the_cause": ["sgd"],
}
# Phrases that assert a claim's verdict about a run.
PHRASES = {
    "dom_stall": ["stalls", "stalled", "stops decreasing", "stops going down", "stop going down",
                  "makes no progress", "does not decrease the loss", "does not reduce the loss"],
    "bulk_pace": ["keeps pace", "kept pace", "keep pace with", "does not slow it down", "follows sgd"],
    "alignment": ["largely aligned", "almost entirely in the top", "rises to near 1"],
}
NOT_AN_ASSERTION = re.compile(r"\?|\bwhether\b|\breports?\b|\bif\b|\bdoes not say\b", re.IGNORECASE)


# ---------------------------------------------------------------------------- reading notebooks
def cells(path: Path, kind: str) -> list[str]:
    nb = json.loads(path.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == kind]


def defined_functions(source: str) -> list[str]:
    """Names of the functions and classes a code cell defines at its top level (IPython magics
    and shell lines are blanked first); none for a cell marked ``# student version``."""
    if MARKER in source:
        return []
    text = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    tree = ast.parse(text)
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


def definitions(paths) -> dict[str, list[str]]:
    """``{name: [notebook stems defining it]}``."""
    found = defaultdict(list)
    for path in paths:
        for source in cells(path, "code"):
            for name in defined_functions(source):
                found[name].append(path.stem)
    return found


def package_names() -> set[str]:
    """Public functions and classes defined in the modules of ``subspace_kit``, and the public
    attributes of ``RunResult``."""
    names = set()
    for info in pkgutil.walk_packages(subspace_kit.__path__, "subspace_kit."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj)) \
                    and obj.__module__ == module.__name__:
                names.add(name)
    names |= {name for name in dir(RunResult) if not name.startswith("_")}
    names |= {"rows", "config", "summary", "path"}
    return names


def assertions(markdown: str, key: str) -> list[str]:
    """Sentences of ``markdown`` that assert claim ``key``'s verdict (see the module docstring)."""
    sentences = re.split(r"(?<=[.;:!])\s+|\n\s*\n|\n-\s", markdown)
    return [s.strip() for s in sentences if any(p in s.lower() for p in PHRASES[key])
            and not NOT_AN_ASSERTION.search(s)]


def contradictions(markdown_cells: list[str], verdicts: dict[str, list[str]]) -> list[str]:
    """Asserting sentences whose claim is not "yes" for every run; ``verdicts``: key → verdicts."""
    bad = []
    for key in PHRASES:
        if all(v == "yes" for v in verdicts.get(key, [])) and verdicts.get(key):
            continue
        for text in markdown_cells:
            bad += [f"{key} is {verdicts.get(key) or 'not tested'} but the text says: {s!r}"
                    for s in assertions(text, key)]
    return bad


# ---------------------------------------------------------------------------- the checks themselves
def test_the_checker_finds_duplicates_and_honours_the_student_marker(tmp_path):
    def notebook(name, *sources):
        path = tmp_path / f"{name}.ipynb"
        path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": s} for s in sources]}))
        return path

    a = notebook("a", "def main_rows(r):\n    return r\n", "%matplotlib inline\nx = 1")
    b = notebook("b", "def main_rows(r):\n    return r\n")
    c = notebook("c", f"{MARKER}: write it yourself\ndef main_rows(r):\n    return r\n")
    assert definitions([a, b, c]) == {"main_rows": ["a", "b"]}
    assert "main_rows" in package_names() and "loss_at_switch" in package_names()


def test_no_function_is_defined_in_two_notebooks():
    twice = {name: where for name, where in definitions(NOTEBOOKS).items() if len(set(where)) > 1}
    assert not twice, f"defined in more than one notebook (move it to the package, or mark {MARKER!r}): {twice}"


def test_no_notebook_redefines_a_function_of_the_package():
    exported = package_names()
    copies = {name: where for name, where in definitions(NOTEBOOKS).items() if name in exported}
    assert not copies, f"notebooks define names the package exports (import them instead): {copies}"


def test_the_prose_checker_flags_a_verdict_the_run_contradicts():
    text = ["Dom-SAM stalls and Bulk-SAM keeps pace with SAM.", "Does Dom-SGD stall? Read whether it keeps pace."]
    assert len(contradictions(text, {"dom_stall": ["no"], "bulk_pace": ["yes"]})) == 1
    assert contradictions(text, {"dom_stall": ["yes"], "bulk_pace": ["yes"]}) == []
    assert len(contradictions(text, {"dom_stall": ["yes"], "bulk_pace": ["yes", "undecidable"]})) == 1


@pytest.mark.parametrize("stem", sorted(NOTEBOOK_RUNS))
def test_notebook_words_do_not_contradict_its_claims(stem):
    from subspace_kit.experiment.shipped import shipped_config
    from subspace_kit.experiment import RunStore
    from subspace_kit.experiment.report import claims
    from subspace_kit.paths import shipped_runs

    from subspace_kit.experiment import RunConfig

    store = RunStore(shipped_runs())
    runs = {name: store.load(RunConfig.preset(name[7:]) if name.startswith("preset:") else shipped_config(name))
            for name in NOTEBOOK_RUNS[stem]}
    missing = [name for name, r in runs.items() if r is None]
    if missing:
        pytest.skip(f"shipped runs {missing} not in {shipped_runs()}")
    plain = {"momentum_gradient": runs.get("momentum"), "adam_gradient": runs.get("adam")}
    verdicts = defaultdict(list)
    for name, r in runs.items():
        for c in claims(r, plain=plain.get(name)):
            verdicts[c.key].append(c.verdict)
    bad = contradictions(cells(REPO / "notebooks" / f"{stem}.ipynb", "markdown"), verdicts)
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("stem", sorted(NOTEBOOK_RUNS))
def test_notebook_does_not_send_readers_to_a_file_outside_the_repository(stem):
    text = "\n".join(cells(REPO / "notebooks" / f"{stem}.ipynb", "markdown")
                     + cells(REPO / "notebooks" / f"{stem}.ipynb", "code"))
    assert "BRIEF" not in text and "shared/paper" not in text
