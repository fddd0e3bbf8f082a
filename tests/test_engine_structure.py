"""The engine reads as parts: no function over ~80 lines, no import of another module's
underscored names (checked on the engine's modules and the scripts that drive it)."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
ENGINE = sorted((ROOT / "subspace_kit" / "experiment").glob("*.py")) + [
    ROOT / "subspace_kit" / "theory" / "along_run.py", ROOT / "benchmarks" / "bench_engine.py",
    ROOT / "scripts" / "make_cached_runs.py"]


def _functions(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.end_lineno - node.lineno + 1


def _private_imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    yield f"from {'.' * node.level}{node.module} import {alias.name}"


@pytest.mark.parametrize("path", ENGINE, ids=lambda p: p.name)
def test_no_engine_function_is_longer_than_80_lines(path):
    long = {name: n for name, n in _functions(path) if n > 80}
    assert not long, f"{path.name}: {long}"


@pytest.mark.parametrize("path", ENGINE, ids=lambda p: p.name)
def test_engine_modules_import_no_underscored_names(path):
    assert not list(_private_imports(path)), path.name


def test_the_structure_checks_can_fail(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from .runner import _step\n\ndef f():\n" + "    x = 1\n" * 85)
    assert list(_private_imports(bad)) == ["from .runner import _step"]
    assert dict(_functions(bad))["f"] == 86
