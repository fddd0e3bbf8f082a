"""Fidelity of the shipped approximations against the paper's protocol, from the same switch point.

Compares, over the post-switch horizon the reference run reached:
- ``paper``: SGD's phase 1 of the `class` preset, then the paper's protocol (Hessian of all 5000
  training samples, subspace refreshed every step), made by benchmarks/fidelity_run.py;
- ``class``: the shipped `class` preset run (Hessian of the first 1000 samples, refresh every 10);
- ``base``: the shipped `sgd` run behind notebooks 05–12 (500 samples, refresh every 20).
All three share phase 1 and the minibatch sequence after the switch (checked: SGD's losses must
agree), so they differ only in the subspace Dom and Bulk use. Reported: each mode's robust final
loss (``RunResult.final_loss``) and its largest gap to the paper's along the common logged steps,
the verdicts of ``report.claims`` on each run cut to the same horizon and whether they agree with
the paper protocol's, and the subspace angles measured along the paper protocol's Dom and Bulk
trajectories (benchmarks/fidelity_run.py: 1000- and 500-sample top-k and 10- and 20-step-old
bases against the fresh full-data top-k).

Writes benchmarks/results/fidelity.json and fidelity.md. Usage:
    python benchmarks/bench_fidelity.py [--store benchmarks/results/fidelity_store]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path

from subspace_kit.experiment.shipped import shipped_config
from subspace_kit.experiment import RunConfig, RunStore
from subspace_kit.experiment.report import claims, verdicts
from subspace_kit.paths import shipped_runs

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
MODES = ("none", "dom", "bulk")
ANGLES = ("sine_1000", "sine_500", "sine_stale_10", "sine_stale_20", "sine_engine_1")


def reference(store: Path):
    """The paper-protocol run in ``store`` (the only run there), and its angle rows."""
    runs = RunStore(store).runs()
    if len(runs) != 1:
        raise SystemExit(f"expected one reference run in {store}, found {len(runs)}")
    run = runs[0]
    angles_path = run.path / "angles.json"
    angles = json.loads(angles_path.read_text()) if angles_path.exists() else []
    return run, angles


def common_horizon(run) -> int:
    """Steps after the switch that every mode of ``run`` has logged."""
    return min(max(run.series(m)[0], default=run.switch_step) for m in MODES) - run.switch_step


def largest_gap(a, b, mode: str) -> float:
    """Largest |loss_a − loss_b| / loss_b of ``mode`` over the steps both logged."""
    sa, sb = dict(zip(*a.series(mode))), dict(zip(*b.series(mode)))
    steps = sorted(set(sa) & set(sb))
    return max((abs(sa[s] - sb[s]) / sb[s] for s in steps), default=float("nan"))


def on_grid(run, steps: set):
    """``run`` with its post-switch rows kept only at ``steps`` (phase 1 whole), so that robust
    final losses of runs logged at different cadences are medians over the same steps."""
    return dataclasses.replace(run, rows=[r for r in run.rows if r["phase"] == "warmup" or r["step"] in steps])


def angle_summary(angles: list[dict], names=ANGLES) -> dict:
    """Median / max / count of each angle ``names`` per trajectory, and the steps measured."""
    out = {}
    for mode in ("dom", "bulk"):
        rows = [r for r in angles if r["mode"] == mode]
        out[mode] = {name: {"median": statistics.median(v), "max": max(v), "count": len(v)}
                     for name in names if (v := [r[name] for r in rows if name in r])}
        out[mode]["steps"] = [rows[0]["step"], rows[-1]["step"]] if rows else []
    return out


def compare(store: Path) -> dict:
    paper, angles = reference(store)
    horizon = common_horizon(paper)
    shipped = RunStore(shipped_runs())
    settings = {"paper": paper.truncated(horizon),
                "class": shipped.load(RunConfig.preset("class")).truncated(horizon),
                "base": shipped.load(shipped_config("sgd")).truncated(horizon)}
    grid = set.intersection(*(set(r.series("none")[0]) for r in settings.values()))
    settings = {name: on_grid(run, grid) for name, run in settings.items()}
    ref = settings["paper"]
    out = {"horizon": horizon, "switch_step": paper.switch_step, "paper_status": paper.status,
           "paper_wall_seconds": paper.summary.get("wall_seconds"), "settings": {}, "angles": angle_summary(angles)}
    walls = {r["step"]: r["wall"] for r in paper.main_rows("bulk", "wall")}
    if len(walls) > 1:  # wall seconds per step after the switch (3 branches, 2 of them projected)
        first, last = min(walls), max(walls)
        out["paper_seconds_per_step"] = (walls[last] - walls[first]) / (last - first)
    out["full_horizon"] = {name: {"horizon": run.horizon, "final_loss": {m: run.final_loss(m) for m in MODES},
                                  "verdicts": verdicts(claims(run))}
                           for name, run in (("class", shipped.load(RunConfig.preset("class"))),
                                             ("base", shipped.load(shipped_config("sgd"))))}
    ref_verdicts = verdicts(claims(ref))
    for name, run in settings.items():
        cfg = run.config
        v = verdicts(claims(run))
        out["settings"][name] = {
            "hessian_samples": cfg.hessian_samples or 5000, "refresh_every": cfg.refresh_every,
            "loss_at_switch": run.loss_at_switch(),
            "final_loss": {m: run.final_loss(m) for m in MODES},
            "largest_gap_to_paper": {m: largest_gap(run, ref, m) for m in MODES},
            "verdicts": {k: v[k] for k in ("dom_stall", "bulk_pace", "removed_part") if k in v},
            "agrees_with_paper": {k: v.get(k) == ref_verdicts.get(k) for k in ("dom_stall", "bulk_pace", "removed_part")},
        }
    return out


def markdown(res: dict) -> str:
    h = res["horizon"]
    lines = ["# Fidelity of the shipped settings against the paper's protocol", "",
             f"From the `class` preset's SGD point at step {res['switch_step']}, over **{h} steps after the switch** "
             f"(the horizon the paper-protocol run reached; its status: {res['paper_status']}). Paper protocol: Hessian "
             "of all 5000 training samples, subspace refreshed every step (benchmarks/fidelity_run.py, one thread on a "
             "shared 2-core machine). All three share phase 1 and the minibatches after the switch (SGD's largest loss "
             f"gap between settings: {max(s['largest_gap_to_paper']['none'] for s in res['settings'].values()):.1e}). "
             "Losses are medians of the last 5 rows on the steps all three logged (every 20 steps).", "",
             "| setting | Hessian samples | refresh every | final loss SGD | Dom | Bulk | largest gap to paper (Dom, Bulk) "
             "| Dom stall | Bulk pace | removed part | verdicts agree with paper |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in res["settings"].items():
        f, g, v = s["final_loss"], s["largest_gap_to_paper"], s["verdicts"]
        agree = "all" if all(s["agrees_with_paper"].values()) else ", ".join(
            k for k, ok in s["agrees_with_paper"].items() if not ok) + " differ"
        lines.append(f"| {name} | {s['hessian_samples']} | {s['refresh_every']} | {f['none']:.4f} | {f['dom']:.4f} | "
                     f"{f['bulk']:.4f} | {g['dom']:.1%}, {g['bulk']:.1%} | {v.get('dom_stall')} | {v.get('bulk_pace')} | "
                     f"{v.get('removed_part')} | {agree} |")
    if "paper_seconds_per_step" in res:
        lines += ["", f"The paper protocol took {res['paper_seconds_per_step']:.1f} s of wall time per step after the "
                  "switch (SGD, Dom-SGD and Bulk-SGD and the angle measurements, one thread, on a 2-core machine shared with "
                  "other jobs: load average between about 2 and 13 during this run)."]
    lines += ["", "The two shipped settings over their own whole horizon:", "",
              "| setting | steps after the switch | final loss SGD | Dom | Bulk | Dom stall | Bulk pace | removed part |",
              "|---|---|---|---|---|---|---|---|"]
    for name, s in res["full_horizon"].items():
        f, v = s["final_loss"], s["verdicts"]
        lines.append(f"| {name} | {s['horizon']} | {f['none']:.4f} | {f['dom']:.4f} | {f['bulk']:.4f} | "
                     f"{v.get('dom_stall')} | {v.get('bulk_pace')} | {v.get('removed_part')} |")
    lines += ["", "Largest principal-angle sine between subspaces along the paper protocol's trajectories "
              "(median / max over the measurements; 0: same subspace, 1: a direction orthogonal):", "",
              "| trajectory | steps | 1000-sample top-k | 500-sample top-k | 10-step-old basis | 20-step-old basis "
              "| 1 step old + solver tolerance |", "|---|---|---|---|---|---|---|"]
    for mode, a in res["angles"].items():
        cells = [f"{a[n]['median']:.3f} / {a[n]['max']:.3f}" if n in a else "–" for n in ANGLES]
        steps = f"{a['steps'][0]}–{a['steps'][1]}" if a.get("steps") else "–"
        lines.append(f"| {mode} | {steps} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=str(RESULTS / "fidelity_store"))
    args = parser.parse_args()
    res = compare(Path(args.store))
    (RESULTS / "fidelity.json").write_text(json.dumps(res, indent=2))
    text = markdown(res)
    (RESULTS / "fidelity.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
