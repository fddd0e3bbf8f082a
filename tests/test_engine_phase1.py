"""Phase 1 once: switch points (saved, found, validated, exact), the shipped-run registry, models
along a run (``snapshots``) and their continuations, and the behaviour reference of the
``class`` preset recorded before the engine was split into parts."""
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from subspace_kit.experiment import RunConfig, RunStore, iter_run, run, run_files
from subspace_kit.experiment.checkpoint import CheckpointError
from subspace_kit.experiment.continuation import CONTINUATIONS, continue_from, snapshots
from subspace_kit.experiment.problem import Problem, flatten, trainable
from subspace_kit.experiment.shipped import find, index, load_shipped, names, shipped_config, smoke_config
from subspace_kit.experiment.store import read_metrics
from subspace_kit.experiment.switch_point import FOLDER, switch_point_key, switch_point_path
from subspace_kit.experiment.trajectory import Trajectory
from subspace_kit.paths import shipped_runs
from test_engine_support import assert_same_rows, tiny, tiny_config  # noqa: F401  (fixture)

REFERENCE = Path(__file__).parent / "data" / "reference_class_2100.csv"


def _phase1_steps(monkeypatch) -> list:
    """Record the steps at which an unprojected trajectory steps before the switch."""
    steps = []
    original = Trajectory.step

    def counting(self, problem, t, **kw):
        if self.mode == "none" and t < problem.cfg.switch_step:
            steps.append(t)
        return original(self, problem, t, **kw)

    monkeypatch.setattr(Trajectory, "step", counting)
    return steps


# ---------------------------------------------------------------------------- switch points
def test_a_run_from_a_switch_point_gives_the_rows_of_a_run_that_replays_phase_1(tiny, tmp_path, monkeypatch):
    first = tiny_config(modes=("none", "dom", "bulk"))
    run(first, store=tmp_path / "a")  # saves the switch point
    point = switch_point_path(tmp_path / "a", first, 1)
    assert point.exists()
    other = tiny_config(modes=("bulk", "interp"), interp_alpha=1.0, interp_beta=2.0, steps=30)  # same phase 1
    replayed = run(other, store=tmp_path / "replay", share_phase1=False)
    (tmp_path / "b" / FOLDER).mkdir(parents=True)
    shutil.copy(point, tmp_path / "b" / FOLDER)
    steps = _phase1_steps(monkeypatch)
    rows = list(iter_run(other, store=tmp_path / "b"))
    started = RunStore(tmp_path / "b").load(other)
    assert steps == []  # phase 1 was read, not replayed
    assert_same_rows(started.rows, replayed.rows)
    assert_same_rows(rows, started.rows, ignore=())  # the phase-1 rows are yielded too
    for field in ("status", "switch_step", "hvps", "final_train_loss"):
        assert started.summary[field] == replayed.summary[field]
    assert started.summary["phase1_from"] == str(tmp_path / "b" / FOLDER / point.name)  # labelled as read
    assert "phase1_from" not in replayed.summary


def test_a_run_from_a_switch_point_stopped_and_resumed_keeps_its_rows_and_label(tiny, tmp_path):
    import threading
    cfg = tiny_config()
    reference = run(cfg, store=tmp_path)  # saves the switch point
    other = cfg.replace(modes=("dom", "bulk"))
    stop = threading.Event()
    stopped = run(other, store=tmp_path, stop=stop, on_row=lambda row: row["step"] >= 18 and stop.set())
    assert stopped.status == "stopped"
    resumed = run(other, store=tmp_path)
    assert resumed.summary["phase1_from"] == stopped.summary["phase1_from"] != ""
    assert_same_rows(resumed.rows, [r for r in reference.rows if r["phase"] == "warmup" or r["mode"] != "none"])


def test_switch_points_are_found_in_the_shipped_store(tiny, tmp_path, monkeypatch):
    cfg = tiny_config()
    run(cfg, store=tmp_path / "shipped")
    monkeypatch.setattr(run_files, "shipped_runs", lambda: tmp_path / "shipped")
    steps = _phase1_steps(monkeypatch)
    result = run(cfg.replace(steps=20), store=tmp_path / "user")
    assert steps == [] and result.status == "completed"
    assert not (tmp_path / "user" / FOLDER).exists()  # nothing new to save


def test_a_run_that_stops_before_the_switch_point_replays_instead(tiny, tmp_path, monkeypatch):
    cfg = tiny_config()
    run(cfg, store=tmp_path)
    steps = _phase1_steps(monkeypatch)
    short = cfg.replace(steps=cfg.switch_step)  # no phase 2: the switch point is past its end
    result = run(short, store=tmp_path)
    assert steps == list(range(cfg.switch_step)) and result.summary["switch_reason"] == "end of run before the switch"


def test_switch_point_key_holds_what_phase_1_depends_on(tiny):
    cfg = tiny_config()
    same = [cfg.replace(modes=("bulk",)), cfg.replace(steps=99), cfg.replace(checkpoint_every=3),
            cfg.replace(project_on="gradient"), cfg.replace(modes=("interp",), interp_alpha=1.0, interp_beta=3.0)]
    assert {switch_point_key(c, 1) for c in same} == {switch_point_key(cfg, 1)}
    differ = [cfg.replace(lr=0.04), cfg.replace(log_every=4), cfg.replace(seed=1), cfg.replace(k=3),
              cfg.replace(switch_step=10), cfg.replace(hessian_samples=50)]
    keys = {switch_point_key(c, 1) for c in differ} | {switch_point_key(cfg, 2), switch_point_key(cfg, 1)}
    assert len(keys) == len(differ) + 2


@pytest.mark.parametrize("damage,field", [
    (lambda a: a.update(t=np.asarray(-5)), "'t'"),
    (lambda a: a.update({"base.params": a["base.params"][:-1]}), "'base.params'"),
    (lambda a: a.update({"base.params": np.full_like(a["base.params"], np.nan)}), "'base.params'"),
    (lambda a: a.update({"rows": a["rows"][::-1]}), "'rows'"),
    (lambda a: a.update(key=np.asarray("0" * 16)), "'key'"),
])
def test_a_damaged_switch_point_is_refused_naming_file_and_field(tiny, tmp_path, damage, field):
    cfg = tiny_config()
    run(cfg, store=tmp_path / "a")
    path = switch_point_path(tmp_path / "a", cfg, 1)
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    damage(arrays)
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match=field) as info:
        run(cfg.replace(steps=20), store=tmp_path / "a")
    assert str(path) in str(info.value)
    path.write_bytes(b"not an npz")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        run(cfg.replace(steps=20), store=tmp_path / "a")


# ---------------------------------------------------------------------------- the shipped runs
def test_every_shipped_run_is_stored_under_the_key_of_its_indexed_config():
    for name in names():
        cfg = shipped_config(name)
        assert index()["runs"][name]["key"] == cfg.key()
        assert (shipped_runs() / cfg.key() / "metrics.csv").exists(), name


def test_shipped_switch_points_are_where_the_index_says():
    for name in index()["switch_points"]:
        assert switch_point_path(shipped_runs(), shipped_config(name), 1).exists(), name


def test_the_long_run_is_labelled_with_the_switch_rule_it_was_made_with():
    entry = index()["runs"]["long"]
    result = find(shipped_config("long"), [shipped_runs()]) or RunStore(shipped_runs()).load(shipped_config("long"))
    assert entry["switch_rule"] == result.summary["switch_rule"] == "bias-corrected-ema"


def test_load_shipped_reads_a_shipped_run_without_training(monkeypatch, tmp_path):
    monkeypatch.setattr(Problem, "build", lambda cfg: pytest.fail("the engine trained"))
    result = load_shipped("gd_small", store=tmp_path)
    assert result.status == "completed" and result.config == shipped_config("gd_small")


def test_shipped_config_rejects_an_unknown_name_and_smoke_shrinks():
    with pytest.raises(ValueError, match="name must be one of"):
        shipped_config("nope")
    small = shipped_config("sgd", smoke=True)
    assert small == smoke_config("sgd") and small.steps == 30 and small.optimizer == "sgd"


# ---------------------------------------------------------------------------- models along a run
def test_snapshots_give_the_model_of_the_run_and_read_the_switch_point(tiny, tmp_path, monkeypatch):
    cfg = tiny_config()
    replayed = {s: flatten(p.detach() for p in trainable(m)).clone() for s, _, m in snapshots(cfg, [4, 12], store=tmp_path)}
    run(cfg, store=tmp_path)  # now a switch point at step 12 exists
    steps = _phase1_steps(monkeypatch)
    read = {s: flatten(p.detach() for p in trainable(m)).clone() for s, _, m in snapshots(cfg, [4, 12], store=tmp_path)}
    assert steps == list(range(4))  # replayed to step 4, then jumped to the switch point
    assert all(torch.equal(replayed[s], read[s]) for s in (4, 12))


def test_continuations_run_in_lock_step_from_the_same_model(tiny):
    cfg = tiny_config()
    _, problem, model = next(iter(snapshots(cfg, [12])))
    before = flatten(p.detach() for p in trainable(model)).clone()
    rows = list(continue_from(problem, model, tuple(CONTINUATIONS), steps=6, start_step=12, measure_every=3,
                              refresh_every=2, covariance_batches=3))
    assert torch.equal(before, flatten(p.detach() for p in trainable(model)))  # the model itself is untouched
    by_mode = {m: [r for r in rows if r["mode"] == m] for m in CONTINUATIONS}
    assert all([r["step"] for r in rs] == [12, 15, 18] for rs in by_mode.values())
    assert len({rs[0]["train_loss"] for rs in by_mode.values()}) == 1  # one starting point
    assert all(math.isfinite(r["train_loss"]) and 0 <= r["alignment_full"] <= 1 for r in rows)
    # SGD continues exactly as an engine trajectory with the same seed would.
    traj = Trajectory.start(problem, "none", torch.Generator().manual_seed(1))
    traj.model.load_state_dict(model.state_dict())
    for t in range(3):
        traj.step(problem, 12 + t)
    loss = [r for r in by_mode["sgd"] if r["step"] == 15][0]["train_loss"]
    from subspace_kit.experiment.problem import evaluate
    assert loss == evaluate(traj.model, problem.loss_fn, problem.X, problem.Y, problem.labels)[0]


# ---------------------------------------------------------------------------- behaviour reference
def _reference_rows():
    rows = read_metrics(REFERENCE)
    return {(r["phase"], r["mode"], r["step"]): r for r in rows}


def _same_platform(tmp_path) -> bool:
    """The first row of the class preset equals the reference's: this machine sums floats the
    way the reference machine did (other CPUs/BLAS differ by ~1e-6 and cannot match exactly)."""
    torch.set_num_threads(1)
    first = run(RunConfig.preset("class", steps=1), store=tmp_path / "probe", share_phase1=False).rows[0]
    ref = _reference_rows()[("warmup", "none", 0)]
    return all(first[k] == ref[k] or (math.isnan(first[k]) and math.isnan(ref[k]))
               for k in ref if k not in ("wall", "phase", "mode"))


NEW_COLUMNS = ("alignment_base_update",)  # logged since the reference was recorded


# Replaying phase 1 takes ~25 s on a quiet 2-core machine (minutes under load): marked slow. The
# shipped switch point was made by this engine, so the first case checks its phase 1 as well.
@pytest.mark.parametrize("share_phase1", [True, pytest.param(False, marks=pytest.mark.slow)],
                         ids=["from the shipped switch point", "replaying phase 1"])
def test_class_preset_reproduces_the_reference_recorded_before_the_refactor(tmp_path, share_phase1):
    """tests/data/reference_class_2100.csv: the class preset cut to 2100 steps (100 after the
    switch), 1 torch thread, made by the engine before it was split into parts (commit 1b6ffe4)."""
    threads = torch.get_num_threads()
    try:
        if not _same_platform(tmp_path):
            pytest.skip("this machine's float kernels differ from the reference machine's")
        result = run(RunConfig.preset("class", steps=2100), store=tmp_path / "run", share_phase1=share_phase1)
    finally:
        torch.set_num_threads(threads)
    reference = _reference_rows()
    assert len(result.rows) == len(reference)
    rows = [{k: v for k, v in r.items() if k not in NEW_COLUMNS} for r in result.rows]
    assert_same_rows(rows, [reference[(r["phase"], r["mode"], r["step"])] for r in rows])
    # For SGD the projection acts on the minibatch gradient: the new column is alignment_batch
    # (on the rows computed here; a shipped switch point's rows predate the column).
    measured = [r for r in result.rows if r["phase"] == "main" and math.isfinite(r["alignment_batch"])]
    assert measured and all(r["alignment_base_update"] == r["alignment_batch"] for r in measured)


def test_make_cached_runs_keeps_only_the_switch_points_the_index_ships(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_cached_runs", Path(__file__).parents[1] / "scripts" / "make_cached_runs.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    keep = script.shipped_switch_points(tmp_path)
    assert {p.name for p in keep} == {switch_point_path(tmp_path, shipped_config(n), 1).name
                                      for n in index()["switch_points"]}
    (tmp_path / FOLDER).mkdir()
    for path in list(keep) + [tmp_path / FOLDER / "0123456789abcdef.npz"]:
        path.write_bytes(b"x")
    script.prune_switch_points(tmp_path)
    assert set((tmp_path / FOLDER).glob("*.npz")) == keep


def test_a_live_class_run_starts_at_its_shipped_switch_point(tmp_path, monkeypatch):
    # What the dashboard and notebook 04 rely on: post-switch rows without replaying 2000 steps.
    monkeypatch.delenv("SUBSPACE_KIT_THREADS", raising=False)  # the shipped point is for 1 thread
    steps = _phase1_steps(monkeypatch)
    rows = iter_run(RunConfig.preset("class", modes=("bulk",)), store=tmp_path)
    first_main = next(r for r in rows if r["phase"] == "main")
    rows.close()
    assert steps == [] and first_main["step"] == 2000 and first_main["mode"] == "bulk"
