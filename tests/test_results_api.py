"""RunResult's analysis methods on a scripted run whose answers are known."""
import math
from pathlib import Path

import pytest

from subspace_kit.experiment import RunConfig, RunResult

SWITCH = 100


def _run():
    cfg = RunConfig.preset("smoke", switch_step=SWITCH, steps=200)
    rows = [dict(step=s, phase="warmup", mode="none", train_loss=1.0 - s / 1000,
                 alignment_full=0.5 if s % 20 == 0 else math.nan,
                 eff_lr_dom=0.01 if s % 20 == 0 else math.nan, eff_lr_bulk=0.03 if s % 20 == 0 else math.nan)
            for s in range(0, SWITCH, 10)]
    for mode, slope in (("none", 1e-3), ("dom", 0.0), ("bulk", 2e-3)):
        for s in range(SWITCH, 200, 10):
            loss = 0.9 - slope * (s - SWITCH)
            rows.append(dict(step=s, phase="main", mode=mode, train_loss=math.nan if s == 150 else loss,
                             alignment_full=math.nan))
    summary = {"status": "completed", "switch_step": SWITCH, "num_parameters": 300,
               "modes": {"none": {"status": "completed"}, "dom": {"status": "diverged"}, "bulk": {"status": "completed"}}}
    return RunResult(cfg, rows, summary, Path("synthetic"))


def test_main_rows_and_series_keep_finite_values_of_one_mode_after_the_switch():
    run = _run()
    assert [r["step"] for r in run.main_rows("dom")][:2] == [100, 110]
    steps, values = run.series("bulk")
    assert 150 not in steps and len(steps) == 9 and values[0] == pytest.approx(0.9)
    assert run.main_rows("none", "alignment_full") == []
    assert len(run.warmup_rows("alignment_full")) == 5


def test_robust_losses_and_the_loss_relative_to_the_switch():
    run = _run()
    # Median of the last 3 phase-1 losses (0.93 … 0.91), the switch row (0.90) and SGD's next 3
    # (0.89 … 0.87): centred on the switch, so a falling curve gives the loss at the switch.
    assert run.loss_at_switch() == pytest.approx(0.90)
    assert run.loss_at_switch(mode="dom") == pytest.approx(0.90)  # Dom's flat 0.9 after it
    assert run.final_loss("bulk") == pytest.approx(0.9 - 2e-3 * 70)  # median of steps 160 … 190
    steps, rel = run.relative_loss("dom")
    assert rel[0] == pytest.approx(1.0)
    assert run.decrease("none") == pytest.approx(0.90 - (0.9 - 1e-3 * 70))
    assert run.horizon == 90


def test_status_of_each_mode_and_alignment_baseline():
    run = _run()
    assert run.diverged("dom") and not run.diverged("bulk")
    assert run.random_alignment() == pytest.approx(math.sqrt(3 / 300))
    assert run.alignment_checks() == ([0, 20, 40, 60, 80], [0.5] * 5)


def test_effective_lr_averages_phase_1_after_step_0():
    lr = _run().effective_lr(until=70)
    assert lr == {"dom": pytest.approx(0.01), "bulk": pytest.approx(0.03), "count": 3}  # steps 20, 40, 60


def test_truncated_keeps_phase_1_and_the_first_steps_after_the_switch():
    short = _run().truncated(40)
    assert short.horizon == 40 and len(short.warmup_rows()) == 10
    assert max(r["step"] for r in short.rows) == 140
