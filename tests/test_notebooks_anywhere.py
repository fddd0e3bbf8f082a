"""Notebook 01 run the way a user might: from some other folder (not notebooks/), with default
parameters. It must read the class run from the shipped runs (``paths.shipped_runs()``), compute
nothing, and write nothing into the current folder or the user's run store.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from subspace_kit import paths

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "01_welcome.ipynb"
# Reading the shipped run takes seconds plus the kernel's start; computing it took 2.2 min on an
# idle 2-core machine (issue 11), far longer on a loaded one.
FAST_S = 120


def outputs_text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") if "text" in out else str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


@pytest.mark.notebooks
@pytest.mark.slow
def test_notebook_01_from_another_folder_reads_the_shipped_run(tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill")
    from subspace_kit.experiment import RunConfig, RunStore

    shipped = RunStore(paths.shipped_runs()).load(RunConfig.preset("class"))
    if shipped is None:
        pytest.skip("this checkout ships no class run")
    for name in (paths.RUNS_ENV, paths.DATA_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path / "home"))  # the kernel inherits it
    work = tmp_path / "work"
    work.mkdir()
    start = time.perf_counter()
    nb = papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / "out.ipynb"), cwd=str(work), kernel_name="python3",
                                    progress_bar=False, execution_timeout=600)
    seconds = time.perf_counter() - start

    assert shipped.path.name in outputs_text(nb), "the notebook did not show the shipped run (its key)"
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("config.json"))
    assert written == [], f"a run was computed into {written}"
    assert not (tmp_path / "home" / "runs").exists() or not any((tmp_path / "home" / "runs").iterdir())
    assert list(work.iterdir()) == [], "nothing may be written to the current folder"
    assert seconds < FAST_S, f"notebook 01 took {seconds:.0f} s: it should only read the shipped run"
