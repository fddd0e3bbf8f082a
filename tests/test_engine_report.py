"""The claims table on synthetic runs whose verdicts are known, and the report's files."""
import math
from pathlib import Path

from subspace_kit.experiment import RunConfig, RunResult
from subspace_kit.experiment.report import claims, claims_markdown, write_report

SWITCH = 40


def _result(*, chi_end, sgd, dom, bulk, batch_chi, statuses=None):
    """A run of the smoke preset shape: warm-up rows with χ rising linearly from 0.3 to
    ``chi_end``, then per mode a straight loss curve from the first to the second number."""
    cfg = RunConfig.preset("smoke", switch_step=SWITCH, steps=80)
    rows = []
    for i, step in enumerate(range(0, SWITCH, 5)):
        rows.append(dict(step=step, phase="warmup", mode="none", train_loss=1.0 - 0.01 * step,
                         alignment_full=0.3 + (chi_end - 0.3) * i / 7, alignment_batch=math.nan, sharpness=50.0))
    for mode, (first, last) in (("none", sgd), ("dom", dom), ("bulk", bulk)):
        for i, step in enumerate(range(SWITCH, 80, 5)):
            loss = first + (last - first) * i / 7
            rows.append(dict(step=step, phase="main", mode=mode, train_loss=loss, alignment_full=0.9,
                             alignment_batch=batch_chi if mode == "bulk" else math.nan, sharpness=50.0))
    modes = {m: {"status": (statuses or {}).get(m, "completed"), "message": ""} for m in cfg.modes}
    summary = {"status": "completed", "switch_step": SWITCH, "modes": modes}
    return RunResult(cfg, rows, summary, Path("synthetic"))


def _verdicts(result):
    return [c.holds for c in claims(result)]


def test_claims_hold_on_a_run_that_tells_the_papers_story():
    result = _result(chi_end=0.95, sgd=(0.5, 0.3), dom=(0.5, 0.49), bulk=(0.5, 0.31), batch_chi=0.9)
    assert _verdicts(result) == [True, True, True, True]
    measured = [c.measured for c in claims(result)]
    assert "0.30 at step 0" in measured[0] and "5% of SGD's decrease" in measured[1]
    assert "ratio 1.03" in measured[2] and "‖P_k g‖² / ‖g‖² = 0.81" in measured[3]


def test_claims_fail_on_a_run_that_contradicts_it():
    result = _result(chi_end=0.4, sgd=(0.5, 0.3), dom=(0.5, 0.3), bulk=(0.5, 0.45), batch_chi=0.6)
    assert _verdicts(result) == [False, False, False, False]


def test_most_of_the_norm_means_more_than_half_of_it():
    # χ = 0.6: the dominant part is 0.6 of ‖g‖ and the bulk part 0.8 of it; the bulk part is
    # the larger one, so the removed part is not "most of the update's norm".
    result = _result(chi_end=0.95, sgd=(0.5, 0.3), dom=(0.5, 0.49), bulk=(0.5, 0.31), batch_chi=0.6)
    assert _verdicts(result)[3] is False
    result = _result(chi_end=0.95, sgd=(0.5, 0.3), dom=(0.5, 0.49), bulk=(0.5, 0.31), batch_chi=0.75)
    assert _verdicts(result)[3] is True


def test_dom_claim_cannot_be_judged_when_sgd_makes_no_progress():
    result = _result(chi_end=0.95, sgd=(0.5, 0.5), dom=(0.5, 0.5), bulk=(0.5, 0.5), batch_chi=0.9)
    dom = claims(result)[1]
    assert dom.holds is None and "did not decrease" in dom.measured


def test_a_diverged_bulk_branch_does_not_keep_pace():
    result = _result(chi_end=0.95, sgd=(0.5, 0.3), dom=(0.5, 0.49), bulk=(0.5, 0.31), batch_chi=0.9,
                     statuses={"bulk": "diverged"})
    bulk = claims(result)[2]
    assert bulk.holds is False and "diverged" in bulk.measured


def test_claims_markdown_shows_each_verdict():
    result = _result(chi_end=0.95, sgd=(0.5, 0.5), dom=(0.5, 0.5), bulk=(0.5, 0.9), batch_chi=0.9)
    table = claims_markdown(claims(result))
    assert table.splitlines()[0].startswith("| claim")
    assert "| yes |" in table and "| **no** |" in table and "| n/a |" in table


def test_a_run_without_a_phase_1_only_makes_the_claims_it_can():
    result = _result(chi_end=0.95, sgd=(0.5, 0.3), dom=(0.5, 0.49), bulk=(0.5, 0.31), batch_chi=0.9)
    result.rows[:] = [r for r in result.rows if r["phase"] == "main" and r["mode"] != "bulk"]
    assert [c.claim.split()[0] for c in claims(result)] == ["Dom-SGD"]


def test_write_report_writes_html_png_and_claims(tmp_path):
    result = _result(chi_end=0.95, sgd=(0.5, 0.3), dom=(0.5, 0.49), bulk=(0.5, 0.31), batch_chi=0.9)
    paths = write_report(result, tmp_path / "report")
    assert {p.name for p in paths.values()} == {"figure.html", "figure.png", "claims.md"}
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Bulk-SGD" in paths["html"].read_text()
    assert "| yes |" in paths["claims"].read_text()
