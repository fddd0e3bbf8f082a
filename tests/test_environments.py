"""Every way of installing the kit installs the tested set: constraints.txt is the one source of truth.

- ``scripts/install_kit.sh`` (used by the Makefile and Binder's postBuild) is run with a stand-in
  Python that records its commands: torch first, by name (``torch==<pin>+cpu``) from PyTorch's
  CPU index unless ``TORCH_VARIANT`` says otherwise, then the kit with ``-c constraints.txt``,
  then the check of the torch build; a failed torch install stops it.
- ``binder/environment.yml`` has conda give Python and pip only (no conda pin to drift);
  ``binder/postBuild`` runs install_kit.sh and no experiment; ``binder/start`` sets one thread.
- The top-level ``environment.yml`` installs the same with pip: ``-c constraints.txt``, the CPU
  index, the pinned torch.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]
BINDER_ENV, TOP_ENV = REPO / "binder" / "environment.yml", REPO / "environment.yml"
INSTALL = REPO / "scripts" / "install_kit.sh"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PYTHON = "3.11"  # the Python the tests and CI run on


def constraints() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line)
            assert match, f"constraints.txt: not an exact pin: {line!r}"
            pins[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return pins


def conda_env(path: Path) -> tuple[dict[str, str], list[str]]:
    """``({conda name: version spec}, [pip lines])`` of an environment file."""
    env = yaml.safe_load(path.read_text())
    assert env["channels"][0] == "conda-forge" and "defaults" not in env["channels"], path
    conda, pip = {}, []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip.extend(dep["pip"])
            continue
        name, _, version = dep.partition("=")
        conda[name.strip()] = version.strip()
    return conda, pip


# ---------------------------------------------------------------- install_kit.sh, behaviour
def run_install(tmp_path, *, fail_on: str | None = None, **env) -> tuple[subprocess.CompletedProcess, list[str]]:
    """install_kit.sh with a stand-in Python that logs each command (and fails one matching ``fail_on``)."""
    log = tmp_path / "calls.log"
    fake = tmp_path / "python"
    fake.write_text("#!/usr/bin/env bash\n"
                    f'echo "$*" >> {log}\n'
                    + (f'case "$*" in *{fail_on}*) exit 1;; esac\n' if fail_on else "")
                    + "exit 0\n")
    fake.chmod(0o755)
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("TORCH_")}
    proc = subprocess.run(["bash", str(INSTALL), str(fake), "notebooks,test"], capture_output=True, text=True,
                          env={**run_env, **env}, timeout=60)
    return proc, (log.read_text().splitlines() if log.exists() else [])


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS takes torch without the +cpu label")
def test_install_script_takes_the_cpu_build_first_then_the_pinned_kit_then_checks(tmp_path):
    proc, calls = run_install(tmp_path)
    assert proc.returncode == 0, proc.stderr
    torch_pin = constraints()["torch"]
    assert calls[0] == f"-m pip install --quiet --no-deps -c constraints.txt --extra-index-url {CPU_INDEX} torch=={torch_pin}+cpu"
    assert calls[1] == "-m pip install --quiet -c constraints.txt -e .[notebooks,test]"
    assert calls[2] == "scripts/check_torch.py --variant cpu"
    assert calls[3] == "-m subspace_kit.datasets.prefetch"
    assert len(calls) == 4


def test_install_script_cuda_switch_and_index_override(tmp_path):
    proc, calls = run_install(tmp_path, TORCH_VARIANT="cu126")
    assert proc.returncode == 0, proc.stderr
    torch_pin = constraints()["torch"]
    assert calls[0].endswith(f"--extra-index-url https://download.pytorch.org/whl/cu126 torch=={torch_pin}+cu126")
    assert calls[2] == "scripts/check_torch.py --variant cu126"
    (tmp_path / "mirror").mkdir()
    proc, calls = run_install(tmp_path / "mirror", TORCH_INDEX="https://mirror.example/whl/cpu")
    assert proc.returncode == 0 and "--extra-index-url https://mirror.example/whl/cpu" in calls[0]


def test_a_failed_torch_install_stops_the_set_up_with_a_message(tmp_path):
    proc, calls = run_install(tmp_path, fail_on="torch==")
    assert proc.returncode == 1
    assert "Could not install torch==" in proc.stderr and CPU_INDEX in proc.stderr
    assert len(calls) == 1  # neither the kit nor anything else was installed after it


def test_a_torch_that_is_not_the_asked_for_build_fails_the_set_up(tmp_path):
    proc, calls = run_install(tmp_path, fail_on="check_torch.py")
    assert proc.returncode == 1 and calls[-1].startswith("scripts/check_torch.py")


def test_a_data_prefetch_failure_does_not_fail_the_set_up(tmp_path):
    proc, _ = run_install(tmp_path, fail_on="prefetch")
    assert proc.returncode == 0 and "note: some data for notebook 13" in proc.stdout


# ---------------------------------------------------------------- Binder
def test_binder_conda_gives_only_python_and_pip():
    conda, pip = conda_env(BINDER_ENV)
    assert conda == {"python": PYTHON, "pip": ""}
    assert pip == [], "Binder's packages come from postBuild with -c constraints.txt, not from a pip section"


def test_binder_post_build_installs_like_make_and_runs_no_experiment():
    post_build = REPO / "binder" / "postBuild"
    assert post_build.stat().st_mode & 0o111, "postBuild must be executable"
    commands = [line for line in post_build.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert "bash scripts/install_kit.sh python notebooks" in commands
    makefile = (REPO / "Makefile").read_text()
    assert "bash scripts/install_kit.sh $(PY)" in makefile  # the same installer as make
    for text in commands + (INSTALL.read_text().splitlines()):
        assert not re.search(r"subspace_kit (run|demo)|import run|\brun\(|papermill|make_cached_runs", text), text


def test_binder_start_sets_one_thread_and_runs_the_command():
    out = subprocess.run([str(REPO / "binder" / "start"), "env"], capture_output=True, text=True, timeout=30,
                         env={k: v for k, v in os.environ.items() if not k.endswith("_THREADS")}).stdout
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "SUBSPACE_KIT_THREADS"):
        assert values.get(name) == "1", name


# ---------------------------------------------------------------- top-level environment.yml
def test_top_level_environment_installs_the_constraints_with_the_cpu_build():
    conda, pip = conda_env(TOP_ENV)
    assert conda == conda_env(BINDER_ENV)[0], "the two conda parts must agree (python and pip only)"
    assert f"--extra-index-url {CPU_INDEX}" in pip
    assert "-c constraints.txt" in pip and "-e .[notebooks]" in pip
    torch_lines = [line for line in pip if line.startswith("torch")]
    assert torch_lines == [f"torch=={constraints()['torch']}+cpu"]


def test_the_tested_python_is_allowed_by_pyproject():
    with open(REPO / "pyproject.toml", "rb") as fh:
        low = re.fullmatch(r">=\s*3\.(\d+)", tomllib.load(fh)["project"]["requires-python"])
    assert low and int(PYTHON.split(".")[1]) >= int(low[1])
