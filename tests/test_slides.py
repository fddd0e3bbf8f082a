"""scripts/slides.py writes every figure it names as PNG and SVG, and says which it could not write."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from subspace_kit.experiment.pool import class_config, contribute
from test_class_pool import fake_result

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "slides.py"


@pytest.fixture(scope="module")
def slides():
    spec = importlib.util.spec_from_file_location("slides", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_valley_and_pool_figures_are_written_as_png_and_svg(slides, tmp_path):
    folder = tmp_path / "handed_in"
    for k in (1, 5):
        contribute(fake_result(class_config(smoke=True, k=k)), folder, f"k{k}")
    contribute(fake_result(class_config(smoke=True)), folder, "baseline")
    assert slides.main(["--out", str(tmp_path / "out"), "--only", "valley,pool", "--pool", str(folder),
                        "--smoke"]) == 0
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["01_valley.png", "01_valley.svg", "02_pool.png", "02_pool.svg"]
    assert all((tmp_path / "out" / name).stat().st_size > 5000 for name in written)
    assert (tmp_path / "out" / "01_valley.svg").read_text().lstrip().startswith("<?xml")


def test_unknown_figure_and_pool_without_folder_are_refused(slides, tmp_path, capsys):
    with pytest.raises(SystemExit):
        slides.main(["--out", str(tmp_path), "--only", "nope"])
    assert "unknown figure 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        slides.main(["--out", str(tmp_path), "--only", "pool"])
    assert "--pool FOLDER" in capsys.readouterr().err


def test_an_empty_pool_is_a_message_and_a_failing_exit_code_not_a_traceback(slides, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = slides.main(["--out", str(tmp_path / "out"), "--only", "pool", "--pool", str(tmp_path / "empty")])
    assert code == 1
    assert "pool: not written: no contribution varies a setting" in capsys.readouterr().err
