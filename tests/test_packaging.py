"""The kit as a package: compatible ranges with the tested pins in constraints.txt, a build
requirement that reads the license field, shipped runs inside the wheel, and a non-editable
install that finds them from any folder.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from subspace_kit import paths

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]
SHIPPED_IN_WHEEL = "subspace_kit/shipped_runs"
NOT_SHIPPED = {"checkpoint.npz"}  # a run's resume checkpoint (see pyproject.toml)


def pyproject() -> dict:
    with open(REPO / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def normalise(name: str) -> str:
    return name.replace("_", "-").replace(".", "-").lower()


def constraints() -> dict[str, Version]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"constraints.txt: {line!r} is not an exact pin"
            pins[normalise(req.name)] = Version(spec.version)
    return pins


def requirements() -> dict[str, list[Requirement]]:
    project = pyproject()["project"]
    groups = {"dependencies": project["dependencies"], **project["optional-dependencies"]}
    return {group: [Requirement(r) for r in reqs] for group, reqs in groups.items()}


# ---------------------------------------------------------------- metadata
def test_runtime_and_extra_requirements_are_ranges_not_pins():
    for group, reqs in requirements().items():
        for req in reqs:
            assert req.specifier, f"{group}: {req} has no version range"
            assert not any(s.operator in ("==", "===") for s in req.specifier), \
                f"{group}: {req} is an exact pin; pins belong in constraints.txt"
            assert any(s.operator in ("<", "<=", "~=") for s in req.specifier), f"{group}: {req} has no upper bound"


def test_every_requirement_is_pinned_in_constraints_within_its_range():
    pins = constraints()
    for group, reqs in requirements().items():
        for req in reqs:
            name = normalise(req.name)
            assert name in pins, f"{group}: {req.name} has no exact version in constraints.txt"
            assert req.specifier.contains(pins[name], prereleases=True), \
                f"{group}: constraints.txt pins {req.name}=={pins[name]}, outside {req.specifier}"


def test_build_requirement_reads_the_spdx_license_field():
    data = pyproject()
    assert isinstance(data["project"]["license"], str)  # an SPDX expression: setuptools >= 77 (PEP 639)
    (setuptools,) = [Requirement(r) for r in data["build-system"]["requires"] if r.startswith("setuptools")]
    assert not setuptools.specifier.contains("76.1.0") and setuptools.specifier.contains("77.0.0")


def test_every_package_folder_is_listed():
    listed = set(pyproject()["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "subspace_kit").rglob("__init__.py")}
    assert on_disk <= listed, f"packages missing from pyproject.toml: {sorted(on_disk - listed)}"
    assert listed - on_disk == {"subspace_kit.shipped_runs"}
    assert pyproject()["tool"]["setuptools"]["package-dir"] == {"subspace_kit.shipped_runs": "data/runs"}


# ---------------------------------------------------------------- the wheel
def shipped_files() -> set[str]:
    root = REPO / "data" / "runs"
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and p.name not in NOT_SHIPPED and "__pycache__" not in p.parts}


def build_wheel(dest: Path) -> Path:
    """A wheel of this checkout, built from a copy (the build writes build/ and egg-info)."""
    src = dest / "src"
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "subspace_kit", src / "subspace_kit", ignore=ignore)
    shutil.copytree(REPO / "data" / "runs", src / "data" / "runs", ignore=ignore)
    (src / "data" / "runs" / "0000000000000000").mkdir()  # a leftover resume checkpoint must stay out
    (src / "data" / "runs" / "0000000000000000" / "checkpoint.npz").write_bytes(b"resume state")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-q", "-w", str(dest / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = (dest / "dist").glob("subspace_kit-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if not (REPO / "data" / "runs").is_dir():
        pytest.skip("no data/runs in this checkout")
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_wheel_carries_every_shipped_run_file_and_no_resume_checkpoint(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    in_wheel = {n[len(SHIPPED_IN_WHEEL) + 1:] for n in names if n.startswith(SHIPPED_IN_WHEEL + "/")}
    assert shipped_files() and in_wheel == shipped_files()
    assert not any(n.endswith("checkpoint.npz") for n in names)
    assert not any(n.startswith("data/") for n in names), "data/ must travel inside the package, nowhere else"


def fresh_venv(where: Path) -> Path:
    """A venv whose dependencies come from this test environment's site-packages (a .pth file)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    python = where / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(purelib, "zz_test_environment.pth").write_text("\n".join(sorted(ours)) + "\n")
    return python


@pytest.mark.slow
def test_installed_wheel_finds_the_shipped_runs_from_any_folder(wheel, tmp_path):
    """Not editable, not a checkout: a wheel installed into a fresh venv, run from an empty folder."""
    python = fresh_venv(tmp_path / "venv")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True, timeout=300)
    work = tmp_path / "elsewhere"
    work.mkdir()
    probe = (
        "import subspace_kit, json; from subspace_kit import paths; "
        "from subspace_kit.experiment import RunConfig, RunStore; "
        "r = RunStore(paths.shipped_runs()).load(RunConfig.preset('class')); "
        "print(json.dumps({'package': subspace_kit.__file__, 'shipped': str(paths.shipped_runs()), "
        "'status': r and r.status, 'run': r and str(r.path), 'steps': r and r.summary['steps_done'], "
        "'store': str(paths.user_store()), 'data': str(paths.data_cache())}))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SUBSPACE_KIT_"))}
    env.update(SUBSPACE_KIT_HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1")
    proc = subprocess.run([str(python), "-c", probe], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    site = Path(tmp_path / "venv").resolve()
    assert Path(found["package"]).resolve().is_relative_to(site), "imported the checkout, not the installed wheel"
    assert Path(found["shipped"]).resolve().is_relative_to(site) and found["shipped"].endswith("shipped_runs")
    assert found["status"] == "completed" and Path(found["run"]).parent == Path(found["shipped"])
    assert found["steps"] > 0
    assert found["store"] == str(tmp_path / "home" / "runs") and found["data"] == str(tmp_path / "home" / "data")
    assert list(work.iterdir()) == [], "nothing may be written to the current folder"


# ---------------------------------------------------------------- paths from a checkout
def test_checkout_shipped_runs_is_the_top_level_data_runs():
    assert paths.shipped_runs() == REPO / "data" / "runs"


def test_user_places_follow_the_environment_and_never_the_current_folder(monkeypatch, tmp_path):
    for name in (paths.HOME_ENV, paths.RUNS_ENV, paths.DATA_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    if sys.platform.startswith("linux"):
        assert paths.kit_home() == tmp_path / "xdg" / "subspace_kit"
    assert paths.user_store() == paths.kit_home() / "runs" and paths.data_cache() == paths.kit_home() / "data"
    assert paths.user_store().is_absolute() and paths.data_cache().is_absolute()
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path / "home"))
    assert paths.user_store() == tmp_path / "home" / "runs" and paths.data_cache() == tmp_path / "home" / "data"
    monkeypatch.setenv(paths.RUNS_ENV, str(tmp_path / "r"))
    monkeypatch.setenv(paths.DATA_ENV, "~/d")
    assert paths.user_store() == tmp_path / "r" and paths.data_cache() == Path.home() / "d"
    from subspace_kit.datasets import data_root

    assert data_root() == Path.home() / "d"  # the loaders use the same place
