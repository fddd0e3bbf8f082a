"""Whole runs of the engine on the tiny problem: every base method and mode end to end, the
run store (round trip, cache hit, resume after a stop and after a SIGKILL), determinism,
divergence, and the switch rule inside a run."""
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from subspace_kit.experiment import RunStore, iter_run, run
from subspace_kit.experiment import metrics, runner
from subspace_kit.experiment.metrics import columns
from test_engine_support import assert_same_rows, tiny, tiny_config  # noqa: F401  (fixture)

TESTS = Path(__file__).parent


def _main(rows, mode):
    return [r for r in rows if r["phase"] == "main" and r["mode"] == mode]


# ---------------------------------------------------------------------------- end to end
@pytest.mark.parametrize("optimizer", ["sgd", "gd", "sam", "momentum", "adam"])
def test_each_base_method_runs_every_mode_end_to_end(tiny, tmp_path, optimizer):
    cfg = tiny_config(optimizer=optimizer, modes=("none", "dom", "bulk", "interp"), interp_alpha=0.5,
                      interp_beta=1.5)
    rows = list(iter_run(cfg, store=tmp_path))
    result = RunStore(tmp_path).load(cfg)
    assert result.status == "completed" and result.summary["switch_step"] == cfg.switch_step
    warm = [r for r in rows if r["phase"] == "warmup"]
    assert warm and all(r["step"] < cfg.switch_step for r in warm)
    for mode in cfg.modes:
        main = _main(rows, mode)
        assert main[0]["step"] == cfg.switch_step and main[-1]["step"] == cfg.steps - 1
        assert all(math.isfinite(r["train_loss"]) for r in main)
        assert result.summary["modes"][mode]["status"] == "completed"
    # Every mode starts from the same point: the same loss at the switch.
    assert len({_main(rows, m)[0]["train_loss"] for m in cfg.modes}) == 1
    # The applied update lies in the subspace (Dom) or orthogonal to it (Bulk).
    for r in _main(rows, "dom"):
        assert r["alignment_update"] > 0.999
    for r in _main(rows, "bulk"):
        assert r["alignment_update"] < 1e-2
    # SGD, GD and SAM move both subspaces at the learning rate (Δθ = η g).
    if optimizer in ("sgd", "gd", "sam"):
        for r in _main(rows, "none"):
            if math.isfinite(r["eff_lr_dom"]):
                assert r["eff_lr_dom"] == pytest.approx(cfg.lr, rel=1e-3)
                assert r["eff_lr_bulk"] == pytest.approx(cfg.lr, rel=1e-3)


def test_momentum_projected_on_the_gradient_runs(tiny, tmp_path):
    cfg = tiny_config(optimizer="momentum", project_on="gradient")
    assert run(cfg, store=tmp_path).status == "completed"


def test_phase1_is_shared_whatever_the_modes(tiny, tmp_path):
    a = list(iter_run(tiny_config(modes=("none", "dom", "bulk")), store=tmp_path / "a"))
    b = list(iter_run(tiny_config(modes=("bulk",)), store=tmp_path / "b"))
    assert_same_rows([r for r in a if r["phase"] == "warmup"], [r for r in b if r["phase"] == "warmup"])
    assert_same_rows(_main(a, "bulk"), _main(b, "bulk"))  # lock-step branches do not interact


# ---------------------------------------------------------------------------- the run store
def test_store_round_trip_reads_back_what_iter_run_yielded(tiny, tmp_path):
    cfg = tiny_config()
    yielded = list(iter_run(cfg, store=tmp_path))
    result = RunStore(tmp_path).load(cfg)
    assert result.config == cfg and result.path == tmp_path / cfg.key()
    assert_same_rows(yielded, result.rows, ignore=())
    assert all(list(r) == columns(cfg) for r in yielded)
    summary = json.loads((result.path / "summary.json").read_text())
    assert summary == result.summary and summary["status"] == "completed"
    assert summary["switch_step"] == cfg.switch_step and summary["steps_done"] == cfg.steps
    for mode in cfg.modes:
        assert summary["final_train_loss"][mode] == _main(yielded, mode)[-1]["train_loss"]
    # HVPs: phase 1's are shared by the branches and counted once.
    phase1 = [r for r in yielded if r["phase"] == "warmup"][-1]["hvps"]
    assert summary["hvps"] == phase1 + sum(_main(yielded, m)[-1]["hvps"] - phase1 for m in cfg.modes)
    assert not (result.path / "checkpoint.npz").exists()
    assert [r.config for r in RunStore(tmp_path).runs()] == [cfg]


def test_store_listing_skips_runs_it_cannot_read(tiny, tmp_path):
    cfg = tiny_config()
    run(cfg, store=tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"dataset": "not-installed-here"}))
    assert [r.config for r in RunStore(tmp_path).runs()] == [cfg]


def test_completed_config_is_answered_from_the_store_without_training(tiny, tmp_path, monkeypatch):
    cfg = tiny_config()
    first = run(cfg, store=tmp_path)
    csv = first.path / "metrics.csv"
    stamp = csv.stat().st_mtime_ns

    def no_training(cfg):
        raise AssertionError("the engine trained again")

    monkeypatch.setattr(runner.Problem, "build", no_training)
    again = list(iter_run(cfg, store=tmp_path))
    assert_same_rows(again, first.rows, ignore=())  # wall times too: nothing was re-measured
    assert run(cfg, store=tmp_path).summary == first.summary
    assert csv.stat().st_mtime_ns == stamp


def test_same_config_and_seed_give_identical_metrics(tiny, tmp_path):
    cfg = tiny_config(optimizer="adam", modes=("none", "dom", "bulk"))
    a = run(cfg, store=tmp_path / "a")
    b = run(cfg, store=tmp_path / "b")
    assert_same_rows(a.rows, b.rows)
    c = run(cfg.replace(seed=1), store=tmp_path / "c")
    assert a.rows[-1]["train_loss"] != c.rows[-1]["train_loss"]


@pytest.mark.parametrize("optimizer,stop_step,project_on", [
    ("sgd", 6, "update"),        # stopped in phase 1
    ("momentum", 17, "update"),  # stopped in phase 2, after a phase-2 checkpoint
    ("adam", 19, "gradient"),
])
def test_stopped_run_resumes_to_the_same_metrics_as_an_uninterrupted_one(tiny, tmp_path, optimizer, stop_step,
                                                                          project_on):
    cfg = tiny_config(optimizer=optimizer, project_on=project_on)
    reference = run(cfg, store=tmp_path / "reference")
    stop = threading.Event()

    def press_stop(row):
        if row["step"] >= stop_step:
            stop.set()

    stopped = run(cfg, store=tmp_path / "run", stop=stop, on_row=press_stop)
    assert stopped.status == "stopped" and stopped.summary["message"].startswith("stopped at step")
    assert stopped.rows and max(r["step"] for r in stopped.rows) >= stop_step  # kept what it had
    assert (stopped.path / "checkpoint.npz").exists()
    resumed = run(cfg, store=tmp_path / "run")
    assert resumed.status == "completed"
    assert_same_rows(resumed.rows, reference.rows)
    assert resumed.summary["final_train_loss"] == reference.summary["final_train_loss"]
    assert resumed.summary["hvps"] == reference.summary["hvps"]


def test_resume_false_starts_over(tiny, tmp_path):
    cfg = tiny_config()
    stop = threading.Event()
    stopped = run(cfg, store=tmp_path, stop=stop, on_row=lambda row: stop.set())
    assert stopped.status == "stopped"
    restarted = run(cfg, store=tmp_path, resume=False)
    reference = run(cfg, store=tmp_path / "reference")
    assert restarted.status == "completed"
    assert_same_rows(restarted.rows, reference.rows)


_CHILD = """
import json, sys, time
sys.path.insert(0, {tests!r})
import test_engine_support as support
support.register()
from subspace_kit.experiment import run
cfg = support.tiny_config(**json.loads(sys.argv[2]))
run(cfg, store=sys.argv[1], on_row=lambda row: time.sleep(0.05))  # slow enough to be killed mid-run
"""


@pytest.mark.slow
def test_run_killed_with_sigkill_resumes_to_the_same_metrics(tiny, tmp_path):
    overrides = dict(optimizer="momentum", steps=40, switch_step=14, checkpoint_every=8)
    cfg = tiny_config(**overrides)
    folder = tmp_path / "run" / cfg.key()
    child = subprocess.Popen([sys.executable, "-c", _CHILD.format(tests=str(TESTS)), str(tmp_path / "run"),
                              json.dumps(overrides)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (folder / "checkpoint.npz").exists():  # written atomically: complete once it exists
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.02)
        time.sleep(0.3)  # a few rows past the checkpoint, which the resumed run must redo
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL  # killed, not finished
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()
        child.stderr.close()
    partial = RunStore(tmp_path / "run").load(cfg)
    assert partial.status == "running" and partial.rows  # a readable partial run
    resumed = run(cfg, store=tmp_path / "run")
    reference = run(cfg, store=tmp_path / "reference")
    assert resumed.status == "completed"
    assert_same_rows(resumed.rows, reference.rows)


def test_a_row_cut_short_by_a_kill_is_skipped_when_reading(tiny, tmp_path):
    cfg = tiny_config()
    result = run(cfg, store=tmp_path)
    csv = result.path / "metrics.csv"
    text = csv.read_text()
    # a run still going when its process was killed: a completed one with extra bytes is damaged
    # (tests/test_store_integrity.py)
    (result.path / "summary.json").write_text(json.dumps({**result.summary, "status": "running"}))
    csv.write_text(text + text.splitlines()[-1][:20])  # half a row, no newline
    assert_same_rows(RunStore(tmp_path).load(cfg).rows, result.rows, ignore=())


# ---------------------------------------------------------------------------- divergence
def test_gd_far_past_the_stability_limit_diverges_with_a_clear_message(tiny, tmp_path, monkeypatch):
    cfg = tiny_config(optimizer="gd", lr=50.0, steps=200, switch_step=150, log_every=1)
    rows = list(iter_run(cfg, store=tmp_path))
    result = RunStore(tmp_path).load(cfg)
    assert result.status == "diverged"
    message = result.summary["message"]
    last = rows[-1]["step"]
    assert f"diverged at step {last + 1}" in message
    assert "learning rate lr=50" in message and "2/lr=0.04" in message
    assert rows and all(math.isfinite(r["train_loss"]) for r in rows)  # the data until then
    assert_same_rows(result.rows, rows, ignore=())
    assert result.summary["modes"]["none"]["status"] == "diverged"
    assert not (result.path / "checkpoint.npz").exists()
    # Diverging again would give the same numbers: the store answers.
    monkeypatch.setattr(runner.Problem, "build", lambda cfg: pytest.fail("the engine trained again"))
    assert_same_rows(list(iter_run(cfg, store=tmp_path)), rows, ignore=())


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the eigensolver on the blown-up branch
def test_one_branch_diverging_after_the_switch_leaves_the_others_running(tiny, tmp_path):
    cfg = tiny_config(modes=("none", "interp"), interp_alpha=1.0, interp_beta=2000.0, steps=60)
    result = run(cfg, store=tmp_path)
    assert result.status == "diverged"
    assert result.summary["modes"]["interp"]["status"] == "diverged"
    assert "Interp-SGD diverged at step" in result.summary["message"]
    assert result.summary["modes"]["none"]["status"] == "completed"
    assert _main(result.rows, "none")[-1]["step"] == cfg.steps - 1


# ---------------------------------------------------------------------------- the switch rule in a run
def _scripted_alignment(monkeypatch, chi_of_step):
    """Replace the measured χ_k(∇L) of phase-1 rows by ``chi_of_step(step)``."""
    measured = metrics.measure_row

    def scripted(problem, traj, t, *args):
        row = measured(problem, traj, t, *args)
        if traj.mode == "none" and "alignment_full" in row:
            row["alignment_full"] = chi_of_step(t)
        return row

    monkeypatch.setattr(metrics, "measure_row", scripted)


def test_switch_rule_fires_where_it_should_in_a_run(tiny, tmp_path, monkeypatch):
    # Checks every 4 steps: χ = 0.9 before step 20, then 1. The EMA (from the first χ) is
    # 1 - 0.1·0.9^n after n ones: over 0.95 first at n = 7 (0.9^7 = 0.478), the check at step 44;
    # phase 2 starts at 45.
    _scripted_alignment(monkeypatch, lambda t: 0.9 if t < 20 else 1.0)
    cfg = tiny_config(switch="rule", switch_check_every=4, steps=52)
    result = run(cfg, store=tmp_path)
    assert result.summary["switch_step"] == 45 and "rule fired" in result.summary["switch_reason"]
    assert result.summary["switch_rule"] == "ema-from-first-chi"
    assert max(r["step"] for r in result.rows if r["phase"] == "warmup") == 44
    assert min(r["step"] for r in result.rows if r["phase"] == "main") == 45


def test_switch_rule_state_survives_a_stop_in_phase_1(tiny, tmp_path, monkeypatch):
    _scripted_alignment(monkeypatch, lambda t: 0.9 if t < 20 else 1.0)
    cfg = tiny_config(switch="rule", switch_check_every=4, steps=52)
    stop = threading.Event()
    stopped = run(cfg, store=tmp_path, stop=stop, on_row=lambda row: row["step"] >= 21 and stop.set())
    assert stopped.status == "stopped" and stopped.summary["switch_step"] is None
    assert run(cfg, store=tmp_path).summary["switch_step"] == 45


def test_rule_that_never_fires_switches_at_max_switch_step(tiny, tmp_path, monkeypatch):
    _scripted_alignment(monkeypatch, lambda t: 0.5)
    cfg = tiny_config(switch="rule", switch_check_every=4, max_switch_step=10, steps=16)
    result = run(cfg, store=tmp_path)
    assert result.summary["switch_step"] == 10 and "max_switch_step=10" in result.summary["switch_reason"]


# ---------------------------------------------------------------------------- failures
def test_an_error_inside_a_run_ends_it_as_failed_with_its_message(tiny, tmp_path, monkeypatch):
    from subspace_kit.experiment.optimizers import UpdateRule
    gradient = UpdateRule.gradient
    calls = []

    def broken(self, *args):
        calls.append(1)
        if len(calls) == 7:
            raise RuntimeError("disk on fire")
        return gradient(self, *args)

    monkeypatch.setattr(UpdateRule, "gradient", broken)
    cfg = tiny_config()
    with pytest.raises(RuntimeError, match="disk on fire"):
        run(cfg, store=tmp_path)
    result = RunStore(tmp_path).load(cfg)
    assert result.status == "failed" and result.summary["message"] == "RuntimeError: disk on fire"
    assert result.rows and result.summary["steps_done"] == 6


def _explode_tracker_of(monkeypatch, mode: str, message: str):
    """Make the subspace solver of ``mode``'s trajectory raise ``ValueError(message)`` after the switch."""
    from subspace_kit.tracker import SubspaceTracker
    from subspace_kit.experiment.trajectory import Trajectory
    update, fork = SubspaceTracker.update, Trajectory.fork

    def exploding(self, H):
        if getattr(self, "explode", False):
            raise ValueError(message)
        return update(self, H)

    def marking(self, problem, new_mode):
        other = fork(self, problem, new_mode)
        other.tracker.explode = new_mode == mode
        return other

    monkeypatch.setattr(SubspaceTracker, "update", exploding)
    monkeypatch.setattr(Trajectory, "fork", marking)


def test_eigensolver_non_finite_error_after_the_switch_diverges_that_branch_alone(tiny, tmp_path, monkeypatch):
    # As `run --preset smoke --modes none,interp --interp 100,1` on one thread: the solver meets a
    # blown-up iterate and says "non-finite"; the SGD branch must still finish.
    _explode_tracker_of(monkeypatch, "interp", "v has non-finite entries (nan or inf)")
    cfg = tiny_config(modes=("none", "interp"), interp_alpha=100.0, interp_beta=1.0)
    result = run(cfg, store=tmp_path)
    assert result.status == "diverged"
    interp = result.summary["modes"]["interp"]
    assert interp["status"] == "diverged" and "Hessian eigensolver failed (v has non-finite" in interp["message"]
    assert result.summary["modes"]["none"]["status"] == "completed"
    assert _main(result.rows, "none")[-1]["step"] == cfg.steps - 1


def test_a_solver_error_on_healthy_parameters_fails_the_run_instead(tiny, tmp_path, monkeypatch):
    _explode_tracker_of(monkeypatch, "dom", "max_matvecs=3 is too small to hold k=2 Lanczos vectors")
    cfg = tiny_config()
    with pytest.raises(ValueError, match="max_matvecs"):
        run(cfg, store=tmp_path)
    result = RunStore(tmp_path).load(cfg)
    assert result.status == "failed" and "max_matvecs=3" in result.summary["message"]


def test_the_thread_count_is_recorded_and_a_resume_at_another_is_refused(tiny, tmp_path, monkeypatch):
    cfg = tiny_config()
    stop = threading.Event()
    stopped = run(cfg, store=tmp_path, stop=stop, on_row=lambda row: row["step"] >= 14 and stop.set())
    assert stopped.status == "stopped" and stopped.summary["threads"] == 1
    monkeypatch.setenv("SUBSPACE_KIT_THREADS", "2")
    with pytest.raises(ValueError, match="1 torch threads and this process uses 2"):
        run(cfg, store=tmp_path)
    assert RunStore(tmp_path).load(cfg).status == "stopped"  # refused before touching anything
    monkeypatch.delenv("SUBSPACE_KIT_THREADS")
    assert run(cfg, store=tmp_path).status == "completed"


def test_a_damaged_checkpoint_is_refused_naming_the_file_and_field(tiny, tmp_path):
    import numpy as np
    from subspace_kit.experiment.checkpoint import CheckpointError
    cfg = tiny_config(optimizer="momentum")
    stop = threading.Event()
    stopped = run(cfg, store=tmp_path, stop=stop, on_row=lambda row: row["step"] >= 17 and stop.set())
    path = stopped.path / "checkpoint.npz"
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    for field, bad in (("t", np.asarray(-5)), ("branches.dom.rule.buf", arrays["branches.dom.rule.buf"][:3])):
        np.savez(path, **{**arrays, field: bad})
        with pytest.raises(CheckpointError, match=repr(field)) as info:
            run(cfg, store=tmp_path)
        assert str(path) in str(info.value) and "allow_pickle" not in str(info.value)


def test_closing_the_generator_early_leaves_a_stopped_run_that_resumes(tiny, tmp_path):
    cfg = tiny_config()
    rows = iter_run(cfg, store=tmp_path)
    for row in rows:
        if row["step"] >= 16:
            break
    rows.close()
    assert RunStore(tmp_path).load(cfg).status == "stopped"
    resumed = run(cfg, store=tmp_path)
    assert_same_rows(resumed.rows, run(cfg, store=tmp_path / "reference").rows)
