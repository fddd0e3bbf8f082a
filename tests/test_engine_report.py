"""The claims table on scripted runs: each claim must come out yes, no and undecidable."""
import math
from pathlib import Path

import pytest

from subspace_kit.experiment import RunConfig, RunResult
from subspace_kit.experiment.report import (KEEPS_PACE, RISE, STALLED, claims, claims_markdown, verdicts,
                                            write_report)

SWITCH, END = 200, 240
CHECKS = SWITCH // 5  # phase-1 rows, each with a χ check
P = 1000  # parameters of the scripted model (the summary carries it: no model is built)


def _result(*, chis=None, sgd=(0.5, 0.3), dom=(0.5, 0.49), bulk=(0.5, 0.31), batch_chi=0.9,
            statuses=None, optimizer="sgd", project_on="update", spike=None, fired_rule=False, modes=None):
    """A scripted run: phase-1 rows with the χ checks ``chis`` (default rising 0.3 → 0.99) and a loss
    flattening to 0.5 at the switch, then
    per mode a straight loss curve from the first to the second number of its pair. ``spike``
    replaces the shared loss at the switch step (all modes) by that value."""
    cfg = RunConfig.preset("smoke", switch_step=SWITCH, steps=END, optimizer=optimizer, project_on=project_on,
                           **({"modes": modes} if modes else {}))
    chis = chis if chis is not None else [min(0.99, 0.3 + 0.1 * i) for i in range(CHECKS)]
    rows = []
    for i, step in enumerate(range(0, SWITCH, 5)):
        rows.append(dict(step=step, phase="warmup", mode="none", train_loss=0.5 + 0.3 * (1 - step / SWITCH) ** 4,
                         alignment_full=chis[i] if i < len(chis) else math.nan, alignment_batch=math.nan))
    for mode, (first, last) in (("none", sgd), ("dom", dom), ("bulk", bulk)):
        if mode not in cfg.modes:
            continue
        for i, step in enumerate(range(SWITCH, END, 5)):
            loss = first + (last - first) * i / 7
            if step == SWITCH and spike is not None:
                loss = spike
            rows.append(dict(step=step, phase="main", mode=mode, train_loss=loss, alignment_full=0.9,
                             alignment_batch=batch_chi if mode == "bulk" else math.nan))
    summary = {"status": "completed", "switch_step": SWITCH, "num_parameters": P,
               "modes": {m: {"status": (statuses or {}).get(m, "completed"), "message": ""} for m in cfg.modes}}
    return RunResult(cfg, rows, summary, Path("synthetic"))


def _verdict(result, key, **kw):
    return verdicts(claims(result, **kw))[key]


# ---------------------------------------------------------------------------- alignment
def test_alignment_yes_when_chi_rises_and_the_rule_fires():
    claim = claims(_result(chis=[0.3, 0.5, 0.8] + [0.99] * (CHECKS - 3)))[0]
    assert claim.verdict == "yes" and claim.values["rule_step"] is not None
    assert "√(k/P) = 0.055" in claim.measured  # √(3/1000)


def test_alignment_no_when_chi_barely_rises_from_an_already_high_start():
    # The audit's case: MSE starts at χ ≈ 0.80 and SAM ends at 0.82.
    claim = claims(_result(chis=[0.80, 0.81, 0.80, 0.83] * (CHECKS // 4 - 1) + [0.82] * 4))[0]
    assert claim.verdict == "no" and claim.values["rise"] < RISE


def test_alignment_undecidable_when_phase_1_ends_before_the_rule_fires():
    claim = claims(_result(chis=[0.5, 0.6, 0.7, 0.8, 0.85, 0.9] + [0.93] * (CHECKS - 6)))[0]
    assert claim.verdict == "undecidable" and "before the rule fired" in claim.measured


def test_alignment_undecidable_without_room_to_rise_or_with_too_few_checks():
    assert claims(_result(chis=[0.96] + [0.99] * (CHECKS - 1)))[0].verdict == "undecidable"
    assert claims(_result(chis=[0.3, 0.99]))[0].verdict == "undecidable"


def test_alignment_shows_a_gd_reference_when_given():
    gd = _result(chis=[0.8, 0.1, 0.01] + [0.0] * (CHECKS - 3))
    claim = claims(_result(), gd=gd)[0]
    assert claim.values["chi_gd"] == pytest.approx(0.0) and "reference: χ = 0.00" in claim.measured


# ---------------------------------------------------------------------------- Dom stall and Bulk pace
def test_dom_yes_no_and_undecidable():
    # Dom removes 5% of what SGD removes, then 80%, then SGD itself removes nothing.
    assert _verdict(_result(sgd=(0.5, 0.3), dom=(0.5, 0.49)), "dom_stall") == "yes"
    assert _verdict(_result(sgd=(0.5, 0.3), dom=(0.5, 0.34)), "dom_stall") == "no"
    claim = [c for c in claims(_result(sgd=(0.5, 0.499), dom=(0.5, 0.5))) if c.key == "dom_stall"][0]
    assert claim.verdict == "undecidable" and "nothing to compare with" in claim.measured


def test_dom_verdict_is_not_decided_by_a_spike_at_the_switch():
    # The Edge-of-Stability case: the loss at the switch step jumps (0.11 → 0.18) and Dom-GD
    # falls back to where it was and stays; SGD goes on to 0.05. Measured from the spike, Dom
    # would have made a large share of SGD's decrease; from the robust switch loss, it made none.
    result = _result(sgd=(0.5, 0.05), dom=(0.5, 0.51), bulk=(0.5, 0.05), spike=0.9)
    assert result.loss_at_switch() == pytest.approx(0.5, abs=0.001)  # median of the last phase-1 losses
    claim = [c for c in claims(result) if c.key == "dom_stall"][0]
    assert claim.verdict == "yes" and claim.values["share"] < STALLED


def test_bulk_yes_no_and_undecidable():
    assert _verdict(_result(sgd=(0.5, 0.3), bulk=(0.5, 0.31)), "bulk_pace") == "yes"
    claim = [c for c in claims(_result(sgd=(0.5, 0.3), bulk=(0.5, 0.45))) if c.key == "bulk_pace"][0]
    assert claim.verdict == "no" and claim.values["share"] < KEEPS_PACE
    assert _verdict(_result(sgd=(0.5, 0.5), bulk=(0.5, 0.45)), "bulk_pace") == "undecidable"


def test_diverged_branches():
    assert _verdict(_result(statuses={"bulk": "diverged"}), "bulk_pace") == "no"
    assert _verdict(_result(statuses={"dom": "diverged"}), "dom_stall") == "yes"
    assert _verdict(_result(statuses={"none": "diverged"}), "bulk_pace") == "undecidable"


def test_a_run_without_a_plain_branch_borrows_one():
    run = _result(modes=("dom", "bulk"))
    assert {c.key for c in claims(run)} == {"alignment", "removed_part"}
    plain = _result()
    assert verdicts(claims(run, plain=plain))["dom_stall"] == "yes"


# ---------------------------------------------------------------------------- the removed part
def test_removed_part_yes_and_no_around_half_of_the_squared_norm():
    assert _verdict(_result(batch_chi=0.75), "removed_part") == "yes"  # 0.5625 of ‖g‖²
    assert _verdict(_result(batch_chi=0.6), "removed_part") == "no"    # 0.36: the bulk part is larger


def test_removed_part_undecidable_for_an_update_projection_that_was_not_logged():
    claim = [c for c in claims(_result(optimizer="momentum", project_on="update")) if c.key == "removed_part"][0]
    assert claim.verdict == "undecidable" and "alignment_base_update" in claim.measured


def test_removed_part_uses_the_base_update_when_logged_and_names_gd_full_batch():
    run = _result(optimizer="adam", project_on="update", batch_chi=0.9)
    for r in run.main_rows("bulk"):
        r["alignment_base_update"] = 0.5
    claim = [c for c in claims(run) if c.key == "removed_part"][0]
    assert claim.verdict == "no" and claim.values["column"] == "alignment_base_update"
    gd = [c for c in claims(_result(optimizer="gd")) if c.key == "removed_part"][0]
    assert "full-batch gradient" in gd.measured and "minibatch" not in gd.measured
    gradient = [c for c in claims(_result(optimizer="momentum", project_on="gradient")) if c.key == "removed_part"][0]
    assert gradient.verdict == "yes" and "fed to SGD+momentum" in gradient.measured


def test_removed_part_undecidable_when_not_logged():
    assert _verdict(_result(batch_chi=math.nan), "removed_part") == "undecidable"


# ---------------------------------------------------------------------------- output
def test_claims_markdown_shows_each_verdict_and_criterion():
    items = claims(_result(sgd=(0.5, 0.5), bulk=(0.5, 0.9)))
    table = claims_markdown(items)
    assert table.splitlines()[0].startswith("| claim") and "criterion" in table.splitlines()[0]
    assert "| yes |" in table and "| **undecidable** |" in table
    items = claims(_result(batch_chi=0.5))
    assert "| **no** |" in claims_markdown(items, criteria=False)


def test_write_report_writes_the_headline_for_slides_the_panels_and_the_claims(tmp_path):
    paths = write_report(_result(), tmp_path / "report")
    assert {p.name for p in paths.values()} == {"figure.html", "figure.png", "claims.md", "headline.html",
                                                  "headline.png", "headline.svg"}
    for name in ("png", "headline_png"):
        assert paths[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["headline_svg"].read_text().lstrip().startswith(("<?xml", "<svg"))
    assert "Bulk-SGD" in paths["html"].read_text()
    assert "| yes |" in paths["claims"].read_text()


def test_every_shipped_run_gets_a_verdict_for_each_claim_it_can_test():
    from subspace_kit.experiment import RunStore
    from subspace_kit.paths import shipped_runs

    runs = [r for r in RunStore(shipped_runs()).runs() if r.status == "completed"]
    if not runs:
        pytest.skip("no shipped runs")
    for run in runs:
        items = claims(run)
        assert all(c.verdict in ("yes", "no", "undecidable") and c.criterion for c in items)
        if "bulk" in run.config.modes:
            assert "removed_part" in verdicts(items)
