"""The command line: run + report produce the figure and the claims table; bad flags give one
readable line and exit status 2, never a traceback."""
import json
import os
import subprocess
import sys

import pytest

from subspace_kit.cli import main
from test_engine_support import TINY_DATA, TINY_MODEL, tiny  # noqa: F401  (fixture)

REPORT_FILES = {"figure.html", "figure.png", "claims.md", "headline.html", "headline.png", "headline.svg"}


def _exit_code(argv) -> int:
    """``main``'s return value, or the status argparse exits with."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def _cli(*args, cwd):
    # One thread: on a busy 2-core machine a second PyTorch thread mostly waits for a time slice.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "subspace_kit", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_run_then_report_on_the_smoke_preset_writes_figure_and_claims(tmp_path):
    # The real smoke preset (paper MLP, MNIST subset), shortened to keep the test short.
    flags = ["--preset", "smoke", "--steps", "12", "--switch-step", "6", "--k", "2", "--out", str(tmp_path / "runs")]
    ran = _cli("run", *flags, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("completed: ")
    reported = _cli("report", *flags, "--report-dir", str(tmp_path / "report"), cwd=tmp_path)
    assert reported.returncode == 0, reported.stderr
    assert {p.name for p in (tmp_path / "report").iterdir()} == REPORT_FILES
    assert "| claim (paper, Section 3) |" in reported.stdout
    assert "Traceback" not in ran.stderr + reported.stderr


def test_run_report_and_demo_in_process_on_the_tiny_problem(tiny, tmp_path, capsys):
    flags = ["--preset", "smoke", "--dataset", TINY_DATA, "--model", TINY_MODEL, "--k", "2", "--steps", "16",
             "--switch-step", "8", "--modes", "none,dom,bulk", "--out", str(tmp_path / "runs")]
    assert main(["run", *flags]) == 0
    assert capsys.readouterr().out.startswith("completed: ")
    assert main(["report", *flags, "--report-dir", str(tmp_path / "report")]) == 0
    assert {p.name for p in (tmp_path / "report").iterdir()} == REPORT_FILES
    out = capsys.readouterr().out
    assert "Dom-SGD stops decreasing the loss" in out and "figure.png" in out
    run_dir = next((tmp_path / "runs").iterdir())
    assert main(["report", "--run-dir", str(run_dir), "--report-dir", str(tmp_path / "again")]) == 0
    assert {p.name for p in (tmp_path / "again").iterdir()} == REPORT_FILES
    assert main(["demo", *flags, "--report-dir", str(tmp_path / "demo")]) == 0  # answered from the store
    assert {p.name for p in (tmp_path / "demo").iterdir()} == REPORT_FILES


def test_report_of_a_run_not_in_the_store_says_so(tmp_path, capsys):
    assert main(["report", "--preset", "smoke", "--out", str(tmp_path), "--report-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no such run" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("flags,named", [
    (["--lr", "abc"], "--lr"),                  # argparse: not a number
    (["--project-on", "state"], "--project-on"),
    (["--lr", "-1"], "lr"),                     # RunConfig: out of range
    (["--k", "0"], "k"),
    (["--modes", "dom,sideways"], "modes"),
    (["--preset", "nope"], "preset"),
    (["--optimizer", "rmsprop"], "optimizer"),
    (["--refresh-every", "0"], "refresh_every"),
    (["--modes", "interp"], "interp_alpha"),
    (["--interp", "1"], "--interp"),
    (["--config", "missing.json"], "--config"),
])
def test_bad_flag_gives_one_line_and_exit_status_2(tmp_path, capsys, flags, named):
    assert _exit_code(["run", *flags, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and named in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing ran


def test_config_file_with_an_unknown_key_is_one_line_naming_it(tmp_path, capsys):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"preset": "smoke", "learnig_rate": 0.1}))
    assert main(["run", "--config", str(path), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "'learnig_rate'" in err


@pytest.mark.slow
def test_bad_flag_in_a_real_process_prints_no_traceback(tmp_path):
    for flags in (["--lr", "abc"], ["--lr", "-1"]):
        done = _cli("run", *flags, "--out", str(tmp_path), cwd=tmp_path)
        assert done.returncode == 2
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


# ---------------------------------------------------------------------------- damaged stores
def _tiny_run(tmp_path, capsys):
    flags = ["--preset", "smoke", "--dataset", TINY_DATA, "--model", TINY_MODEL, "--k", "2", "--steps", "16",
             "--switch-step", "8", "--out", str(tmp_path / "runs")]
    assert main(["run", *flags]) == 0
    capsys.readouterr()
    return flags, next((tmp_path / "runs").iterdir())


def _one_error_line(capsys, *named):
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for name in named:
        assert name in err, err
    return captured


def test_report_of_a_run_whose_metrics_were_deleted_fails_naming_the_file(tiny, tmp_path, capsys):
    flags, run_dir = _tiny_run(tmp_path, capsys)
    (run_dir / "metrics.csv").unlink()
    assert main(["report", *flags, "--report-dir", str(tmp_path / "report")]) == 1
    captured = _one_error_line(capsys, "damaged", str(run_dir / "metrics.csv"))
    assert "| claim" not in captured.out and not (tmp_path / "report").exists()
    assert main(["report", "--run-dir", str(run_dir), "--report-dir", str(tmp_path / "report")]) == 1
    _one_error_line(capsys, "metrics.csv")


def test_check_lists_damaged_folders_with_the_reason_and_exits_1(tiny, tmp_path, capsys):
    flags, run_dir = _tiny_run(tmp_path, capsys)
    assert main(["check", "--out", str(tmp_path / "runs")]) == 0
    assert capsys.readouterr().out.startswith("completed")
    (run_dir / "metrics.csv").unlink()
    (run_dir / "metrics.csv").mkdir()
    bad = tmp_path / "runs" / "0123456789abcdef"
    bad.mkdir()
    (bad / "config.json").write_text("{oops")
    assert main(["check", "--out", str(tmp_path / "runs")]) == 1
    out = capsys.readouterr().out
    assert f"damaged    {run_dir}  {run_dir / 'metrics.csv'} is not a regular file" in out
    assert f"{bad / 'config.json'} is not valid JSON" in out


def test_check_seal_adds_checksums_to_a_legacy_store(tiny, tmp_path, capsys):
    flags, run_dir = _tiny_run(tmp_path, capsys)
    summary = json.loads((run_dir / "summary.json").read_text())
    summary.pop("rows", None), summary.pop("metrics_sha256", None)  # as stored before they were recorded
    (run_dir / "summary.json").write_text(json.dumps(summary))
    assert main(["check", "--out", str(tmp_path / "runs"), "--seal"]) == 0
    assert capsys.readouterr().out.strip().endswith("sealed: 11 rows")
    assert json.loads((run_dir / "summary.json").read_text())["rows"] == 11


def test_run_into_a_run_folder_that_is_a_link_fails_naming_it(tiny, tmp_path, capsys):
    flags, run_dir = _tiny_run(tmp_path, capsys)
    elsewhere = tmp_path / "elsewhere"
    run_dir.rename(elsewhere)
    run_dir.symlink_to(elsewhere, target_is_directory=True)
    before = {p.name: p.read_bytes() for p in elsewhere.iterdir()}
    assert main(["run", *flags, "--seed", "0"]) == 1
    _one_error_line(capsys, str(run_dir), "is a link")
    assert {p.name: p.read_bytes() for p in elsewhere.iterdir()} == before


# ---------------------------------------------------------------------------- validation gaps
def test_modes_that_are_not_a_list_in_a_config_file_are_named(tmp_path, capsys):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"preset": "smoke", "modes": 5}))
    assert main(["run", "--config", str(path), "--out", str(tmp_path / "runs")]) == 2
    _one_error_line(capsys, "modes", "got 5")


def test_a_seed_out_of_torchs_range_is_named_with_the_range(tmp_path, capsys):
    assert main(["run", "--preset", "smoke", "--seed", str(2 ** 64), "--out", str(tmp_path / "runs")]) == 2
    _one_error_line(capsys, "seed", str(2 ** 64 - 1))
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("flags,named", [
    (["--steps", "-1"], "--steps"),
    (["--batch-size", "0"], "--batch-size"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "-0.1"], "--lr"),
    (["--k", "0"], "--k"),
    (["--tol", "0"], "--tol"),
    (["--seed", "-3"], "--seed"),
])
def test_eigen_rejects_bad_options_naming_them(capsys, flags, named):
    assert main(["eigen", *flags]) == 2
    _one_error_line(capsys, named)


def test_an_unwritable_report_folder_is_one_line_naming_it(tiny, tmp_path, capsys):
    flags, run_dir = _tiny_run(tmp_path, capsys)
    (tmp_path / "taken").write_text("a file where the report folder should be")
    assert main(["report", "--run-dir", str(run_dir), "--report-dir", str(tmp_path / "taken")]) == 1
    _one_error_line(capsys, str(tmp_path / "taken"))
