"""The class experiment: one setting per group, contributions handed in as files, pooled into a figure.

The pooling must survive a class handing in at once: several processes writing into one folder
at the same moment must leave every contribution whole and readable.
"""
from __future__ import annotations

import json
import math
import multiprocessing
from pathlib import Path

import pytest

from subspace_kit.experiment.config import RunConfig
from subspace_kit.experiment.pool import (FINAL_WINDOW, POST_SWITCH_STEPS, class_config, contribute, panels,
                                          pooled_figure, read_contributions, save_pooled, summarize, varied)
from subspace_kit.experiment.results import RunResult

SWITCH = 40


def fake_result(cfg: RunConfig, *, dom_final: float = 0.8, bulk_final: float = 0.42, sgd_final: float = 0.4) -> RunResult:
    """A finished run of ``cfg`` whose three modes end (after a few noisy rows) at the given losses."""
    rows = [dict(step=t, phase="warmup", mode="none", train_loss=2.0 - t / 40, alignment_full=0.5 + t / 100)
            for t in range(0, SWITCH, 5)]
    for mode, final in (("none", sgd_final), ("dom", dom_final), ("bulk", bulk_final)):
        rows.append(dict(step=SWITCH, phase="main", mode=mode, train_loss=1.0, alignment_full=0.9))
        # the last rows wiggle by ±10 % around `final`; a spike on the very last row
        tail = [final * w for w in (1.1, 0.9, 1.05, 0.95, 1.0, 1.02, 5.0)]
        rows += [dict(step=SWITCH + 5 * (i + 1), phase="main", mode=mode, train_loss=v, alignment_full=0.9)
                 for i, v in enumerate(tail)]
    return RunResult(cfg, rows, {"status": "completed", "switch_step": SWITCH}, Path("nowhere"))


def test_class_config_varies_one_setting_of_the_class_preset_with_a_short_horizon():
    cfg = class_config(k=20)
    base = RunConfig.preset("class")
    assert cfg.k == 20 and cfg.lr == base.lr and cfg.switch_step == base.switch_step
    assert cfg.steps == base.switch_step + POST_SWITCH_STEPS
    assert varied(cfg) == {"k": 20} and varied(class_config()) == {}
    adam = class_config(optimizer="adam")  # brings its own step size along ...
    assert adam.lr == 0.001 and varied(adam) == {"optimizer": "adam"}
    assert varied(class_config(optimizer="adam", lr=0.01)) == {"optimizer": "adam", "lr": 0.01}  # ... unless told
    with pytest.raises(ValueError, match="'momentum' cannot be varied.*choose from k, lr"):
        class_config(momentum=0.5)


def test_summary_ratios_use_the_median_of_the_last_logged_losses_not_the_last_spike():
    summary = summarize(fake_result(class_config(smoke=True)))
    tail = sorted([1.0, 0.95, 1.02, 5.0, 1.05][-FINAL_WINDOW:])  # the last FINAL_WINDOW factors
    factor = tail[len(tail) // 2]
    assert summary["final_loss"]["dom"] == pytest.approx(0.8 * factor)
    assert summary["ratios"]["dom"] == pytest.approx(0.8 / 0.4)
    assert summary["ratios"]["bulk"] == pytest.approx(0.42 / 0.4)
    assert summary["loss_at_switch"] == 1.0
    assert summary["relative_curves"]["dom"][0] == [0, 1.0]


def test_summary_refuses_a_run_without_the_three_modes():
    cfg = class_config(smoke=True).replace(modes=("none",))
    with pytest.raises(ValueError, match="modes none, dom and bulk"):
        summarize(fake_result(cfg))


def test_contributions_round_trip_and_bad_files_are_skipped_with_a_reason(tmp_path):
    contribute(fake_result(class_config(smoke=True, k=1), dom_final=1.2), tmp_path, "Team A")
    contribute(fake_result(class_config(smoke=True)), tmp_path, "team b")
    (tmp_path / "broken.json").write_text('{"schema": "subspace_kit.class_result/1", "gro')
    (tmp_path / "other.json").write_text(json.dumps({"hello": 1}))
    (tmp_path / ".team-c-0000.json.1234.tmp").write_text("half written")
    pool = read_contributions(tmp_path)
    assert sorted(e.group for e in pool.entries) == ["Team A", "team b"]
    assert sorted(name for name, _ in pool.skipped) == ["broken.json", "other.json"]
    assert all(reason for _, reason in pool.skipped)
    table = {row["group"]: row for row in pool.table(smoke=True)}
    assert table["Team A"]["setting"] == "k = 1" and table["Team A"]["Dom/SGD"] == pytest.approx(3.0)
    assert table["team b"]["setting"] == "baseline (class preset)"


def test_reading_a_folder_that_is_not_there_says_so(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        read_contributions(tmp_path / "nope")


def _hand_in(folder: str, worker: int, count: int) -> None:
    for i in range(count):  # the same group and setting for all: the worst case for name clashes
        contribute(fake_result(class_config(smoke=True, k=5), dom_final=1.0 + worker + i / 10), folder, "same group")


def test_groups_handing_in_at_the_same_time_do_not_damage_each_other(tmp_path):
    workers, count = 6, 8
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hand_in, args=(str(tmp_path), w, count)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    pool = read_contributions(tmp_path)
    assert pool.skipped == [] and len(pool.entries) == workers * count
    ratios = sorted(round(e.ratio("dom") * 0.4, 6) for e in pool.entries)
    assert ratios == sorted(round(1.0 + w + i / 10, 6) for w in range(workers) for i in range(count))
    assert not [p.name for p in tmp_path.iterdir() if not p.name.endswith(".json")]  # no temp file left


def test_panels_hold_single_setting_runs_plus_the_baseline_and_the_figure_plots_their_ratios(tmp_path):
    for k, dom in ((1, 1.1), (10, 1.6), (20, 2.0)):
        cfg = class_config(smoke=True, k=k) if k != 3 else class_config(smoke=True)
        contribute(fake_result(cfg, dom_final=dom * 0.4), tmp_path, f"k{k}")
    contribute(fake_result(class_config(smoke=True), dom_final=1.4 * 0.4), tmp_path, "baseline")
    contribute(fake_result(class_config(smoke=True, loss="cross_entropy")), tmp_path, "ce")
    contribute(fake_result(class_config(smoke=True, k=5, batch_size=25)), tmp_path, "two at once")
    pool = read_contributions(tmp_path)
    groups = panels(pool, smoke=True)
    assert list(groups) == ["k", "loss"]
    assert [(v, e.group) for v, e in groups["k"]] == [(1, "k1"), (3, "baseline"), (10, "k10"), (20, "k20")]
    fig = pooled_figure(pool, smoke=True)
    dom_markers = [t for t in fig.data if t.name == "Dom/SGD (a group)"][0]
    assert list(dom_markers.x) == [1, 3, 10, 20]
    assert list(dom_markers.y) == pytest.approx([1.1, 1.4, 1.6, 2.0])
    assert fig.layout.xaxis.type == "log"
    paths = save_pooled(pool, tmp_path / "out" / "pooled", smoke=True)
    assert [p.suffix for p in paths] == [".png", ".svg"] and all(p.stat().st_size > 1000 for p in paths)


def test_a_real_smoke_run_contributes_and_pools(tmp_path):
    from subspace_kit.experiment.runner import run

    cfg = class_config(smoke=True, k=2)
    result = run(cfg, store=tmp_path / "runs")
    path = contribute(result, tmp_path / "shared", "team real")
    (entry,) = read_contributions(tmp_path / "shared").entries
    assert entry.path == path and entry.config == cfg
    assert math.isfinite(entry.ratio("dom")) and math.isfinite(entry.ratio("bulk"))
