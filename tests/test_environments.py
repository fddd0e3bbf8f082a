"""The conda environments (Binder's and the top-level one) match the tested pip environment,
package by package and version by version: bumping a pin in one file only fails here.

Sources of truth: ``pyproject.toml`` (dependencies + the ``notebooks`` extra) and, for the
packages it does not list (the widget front ends), ``constraints.txt`` (the pip freeze the tests
ran with). Conda names are mapped to pip names (``pytorch`` ↔ ``torch``, ``matplotlib-base`` ↔
``matplotlib``) and compared after PEP 503 normalisation.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]
ENV_FILES = [REPO / "binder" / "environment.yml", REPO / "environment.yml"]
CONDA_TO_PIP = {"pytorch": "torch", "matplotlib-base": "matplotlib"}
NOT_PINNED = {"python", "pip"}  # python is checked on its own; pip is the installer
PYTHON = "3.11"


def normalise(name: str) -> str:
    name = re.sub(r"[-_.]+", "-", name).lower()
    return CONDA_TO_PIP.get(name, name)


def pip_pins(requirements) -> dict[str, str]:
    pins = {}
    for req in requirements:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;]+)\s*", req)
        assert match, f"not an exact pin: {req!r}"
        pins[normalise(match[1])] = match[2]
    return pins


def pyproject() -> dict:
    with open(REPO / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def expected_pins() -> dict[str, str]:
    project = pyproject()["project"]
    return pip_pins(project["dependencies"] + project["optional-dependencies"]["notebooks"])


def constraints() -> dict[str, str]:
    lines = (REPO / "constraints.txt").read_text().splitlines()
    return pip_pins(line for line in lines if line.strip() and not line.lstrip().startswith("#"))


def conda_specs(path: Path) -> dict[str, tuple[str, str | None]]:
    """``{pip name: (version, build)}`` of the conda dependencies (pip sub-lists are refused)."""
    env = yaml.safe_load(path.read_text())
    specs = {}
    for dep in env["dependencies"]:
        assert isinstance(dep, str), f"{path.name}: a pip section would bypass conda-forge: {dep!r}"
        name, _, rest = dep.partition("=")
        version, _, build = rest.lstrip("=").partition("=")
        key = normalise(name.strip())
        assert key not in specs, f"{path.name}: {name} listed twice"
        specs[key] = (version.strip(), build.strip() or None)
    return specs


@pytest.fixture(params=ENV_FILES, ids=lambda p: str(p.relative_to(REPO)))
def env_file(request) -> Path:
    return request.param


def test_environment_uses_conda_forge_only(env_file):
    channels = yaml.safe_load(env_file.read_text())["channels"]
    assert channels[0] == "conda-forge" and "defaults" not in channels


def test_environment_python_is_the_tested_one(env_file):
    version, _ = conda_specs(env_file)["python"]
    assert version == PYTHON
    low = re.fullmatch(r">=\s*3\.(\d+)", pyproject()["project"]["requires-python"])
    assert low and int(PYTHON.split(".")[1]) >= int(low[1])


def test_environment_pins_every_package_to_the_tested_version(env_file):
    specs = conda_specs(env_file)
    tested = {**constraints(), **expected_pins()}
    for name, (version, _) in specs.items():
        if name in NOT_PINNED:
            continue
        assert name in tested, f"{env_file.name}: {name} is not in pyproject.toml or constraints.txt"
        assert version == tested[name], f"{env_file.name}: {name}={version}, but the tests ran with {tested[name]}"


def test_environment_has_every_dependency_of_pyproject(env_file):
    specs = conda_specs(env_file)
    missing = sorted(set(expected_pins()) - set(specs))
    assert not missing, f"{env_file.name} lacks {missing} (pyproject.toml dependencies + notebooks extra)"


def test_environment_takes_a_cpu_build_of_pytorch(env_file):
    version, build = conda_specs(env_file)["torch"]
    assert version == expected_pins()["torch"]
    assert build == "cpu*", "conda-forge's CPU builds are cpu_mkl_* / cpu_generic_*; a CUDA build would not fit Binder"


def test_binder_and_top_level_environments_list_the_same_packages():
    binder, top = (conda_specs(p) for p in ENV_FILES)
    assert binder == top


def test_widget_front_ends_match_the_tested_ones():
    specs = conda_specs(ENV_FILES[0])
    tested = constraints()
    for name in ("jupyterlab-widgets", "widgetsnbextension"):
        assert specs[name][0] == tested[name]


def test_binder_post_build_installs_the_kit_without_dependencies():
    post_build = REPO / "binder" / "postBuild"
    assert post_build.stat().st_mode & 0o111, "postBuild must be executable"
    assert "pip install --no-deps -e ." in post_build.read_text()
