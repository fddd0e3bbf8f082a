"""Fidelity of the class-size CNN and Transformer presets against their own full-data protocol.

For each of `cnn-class` and `transformer-class` (notebook 13) this runs a reference with the
paper's protocol on that preset's problem: the same phase 1 (SGD's parameters do not depend on the
Hessian), then SGD / Dom-SGD / Bulk-SGD with the subspace from the Hessian of *all* the preset's
training samples refreshed *every* step, over the preset's whole post-switch horizon. The refresh
is the `reference` preset's (one Hessian-vector product per step, certified by a full update with
explicit residuals ≤ 1e-3 every ``CERTIFY`` steps, logging ``subspace_sin``): a full solve at
every step of the CNN on 1000 samples would take hours here. Along the
reference's Dom and Bulk trajectories ``fidelity_run.AngleProbe`` measures the largest
principal-angle sine between the exact top-k and (a) the top-k of the preset's Hessian subset
(cnn-class: the first 100 of 1000 samples; transformer-class uses all 200, so none), (b) the
basis ``refresh_every`` steps old (the preset's staleness). Then it compares the shipped preset
run with the reference: each mode's robust final loss, the largest loss gap along the common
logged steps, and whether each verdict of ``report.claims`` agrees.

Writes benchmarks/results/fidelity_presets.{json,md}; the reference runs go to
benchmarks/results/fidelity_presets_store. Usage (transformer-class minutes, cnn-class about half
an hour on one quiet thread):
    OMP_NUM_THREADS=1 python benchmarks/fidelity_presets.py [--presets cnn-class transformer-class]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench_fidelity import MODES, angle_summary, largest_gap, on_grid
from fidelity_run import AngleProbe
from subspace_kit.experiment import RunConfig, RunStore, run
from subspace_kit.experiment.report import claims, verdicts
from subspace_kit.paths import shipped_runs
from subspace_kit.threads import engine_threads

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PRESETS = ("transformer-class", "cnn-class")
CERTIFY = {"cnn-class": 25, "transformer-class": 50}  # steps between certifications (exact solves)
CLAIMS = ("alignment", "dom_stall", "bulk_pace", "removed_part")


def reference_config(preset: str) -> RunConfig:
    """The preset with the full-data Hessian refreshed every step by the cheap refresh, certified
    every ``CERTIFY[preset]`` steps (checkpoints every 10 steps feed the angle probe; they do not
    change the numbers)."""
    return RunConfig.preset(preset, hessian_samples=None, refresh_every=1, refresh_method="rotate",
                            refresh_columns=1, certify_every=CERTIFY[preset], tracker_tol=1e-3,
                            checkpoint_every=10)


def measure(preset: str, store: Path, angle_every: int) -> dict:
    cfg = reference_config(preset)
    shipped_cfg = RunConfig.preset(preset)
    shipped = RunStore(shipped_runs()).load(shipped_cfg)  # never computed here
    if shipped is None:
        raise SystemExit(f"the shipped {preset} run {shipped_cfg.key()} is not in {shipped_runs()}")
    n = cfg.n_train
    samples = (shipped_cfg.hessian_samples,) if shipped_cfg.hessian_samples and shipped_cfg.hessian_samples < n else ()
    probe = AngleProbe(cfg, store / cfg.key(), angle_every, samples=samples, lags=(shipped_cfg.refresh_every,))
    angles_path = store / cfg.key() / "angles.json"
    with engine_threads():
        ref = run(cfg, store=store, on_row=probe)
    angle_rows = probe.rows or (json.loads(angles_path.read_text()) if angles_path.exists() else [])
    grid = set(ref.series("none")[0]) & set(shipped.series("none")[0])
    pair = {"reference": on_grid(ref, grid), "preset": on_grid(shipped, grid)}
    v = {name: verdicts(claims(r)) for name, r in pair.items()}
    names = [f"sine_{s}" for s in samples] + [f"sine_stale_{shipped_cfg.refresh_every}", "sine_engine_1"]
    walls = {r["step"]: r["wall"] for r in ref.main_rows("bulk", "wall")}
    certified = [r["subspace_sin"] for m in ("dom", "bulk") for r in ref.main_rows(m, "subspace_sin")[1:]]
    return {
        "preset": preset, "shipped_run": shipped.path.name, "reference_run": ref.path.name,
        "reference_status": ref.status, "switch_step": ref.switch_step, "horizon": ref.horizon,
        "hessian_samples": {"preset": shipped_cfg.hessian_samples, "reference": n},
        "refresh_every": {"preset": shipped_cfg.refresh_every, "reference": 1},
        "sgd_gap": largest_gap(pair["preset"], pair["reference"], "none"),
        "final_loss": {name: {m: r.final_loss(m) for m in MODES} for name, r in pair.items()},
        "largest_gap": {m: largest_gap(pair["preset"], pair["reference"], m) for m in ("dom", "bulk")},
        "verdicts": v, "agree": {k: v["preset"].get(k) == v["reference"].get(k) for k in CLAIMS},
        "angles": angle_summary(angle_rows, names), "angle_names": names,
        "certify_every": cfg.certify_every, "reference_sin_max": max(certified, default=None),
        "certifications": len(certified),
        "reference_seconds_per_step": ((walls[max(walls)] - walls[min(walls)]) / (max(walls) - min(walls))
                                       if len(walls) > 1 else None),
    }


def markdown(results: list[dict]) -> str:
    lines = ["# Fidelity of cnn-class and transformer-class against their full-data protocol", "",
             "Each shipped preset run (notebook 13) against a reference on the same problem with the paper's "
             "protocol: the Hessian of all the preset's training samples, refreshed every step (one Hessian-vector "
             "product per step renews one basis vector, a full solve with explicit residuals ≤ 1e-3 certifies the "
             "basis at intervals), from the same switch point (phase 1 is shared: SGD's largest loss gap below says "
             "so) over the preset's whole horizon. Losses are medians of the last rows on the steps both logged. "
             "Made by `python benchmarks/fidelity_presets.py`.", "",
             "| preset | Hessian samples (preset / reference) | refresh every | steps after the switch | SGD gap "
             "| final loss SGD | Dom (preset / ref) | Bulk (preset / ref) | largest gap Dom, Bulk | verdicts (preset / ref) "
             "| agree |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        fp, fr = r["final_loss"]["preset"], r["final_loss"]["reference"]
        vp, vr = r["verdicts"]["preset"], r["verdicts"]["reference"]
        cells = ", ".join(f"{k}: {vp.get(k)} / {vr.get(k)}" for k in CLAIMS)
        agree = "all" if all(r["agree"].values()) else ", ".join(k for k, ok in r["agree"].items() if not ok) + " differ"
        lines.append(f"| {r['preset']} | {r['hessian_samples']['preset']} / {r['hessian_samples']['reference']} | "
                     f"{r['refresh_every']['preset']} / 1 | {r['horizon']} | {r['sgd_gap']:.1e} | {fr['none']:.4f} | "
                     f"{fp['dom']:.4f} / {fr['dom']:.4f} | {fp['bulk']:.4f} / {fr['bulk']:.4f} | "
                     f"{r['largest_gap']['dom']:.1%}, {r['largest_gap']['bulk']:.1%} | {cells} | {agree} |")
    lines += ["", "Largest principal-angle sine to the exact full-data top-k along the reference's trajectories "
              "(median / max over the measurements):", "",
              "| preset | trajectory | steps | preset's Hessian subset | basis `refresh_every` steps old "
              "| 1 step old + solver tolerance |", "|---|---|---|---|---|---|"]
    for r in results:
        for mode in ("dom", "bulk"):
            a = r["angles"][mode]
            subset = [n for n in r["angle_names"] if n.startswith("sine_") and n[5:].isdigit()]
            stale = [n for n in r["angle_names"] if n.startswith("sine_stale_")]
            cell = lambda names: (f"{a[names[0]]['median']:.3f} / {a[names[0]]['max']:.3f}"  # noqa: E731
                                  if names and names[0] in a else "– (all samples)" if not names else "–")
            steps = f"{a['steps'][0]}–{a['steps'][1]}" if a.get("steps") else "–"
            lines.append(f"| {r['preset']} | {mode} | {steps} | {cell(subset)} | {cell(stale)} | {cell(['sine_engine_1'])} |")
    lines += ["", "How far the reference's own cheap refresh drifted from the certified basis (largest sine at a "
              "certification, after the one at the switch): " + "; ".join(
                  f"{r['preset']} {r['reference_sin_max']:.3f} over {r['certifications']} certifications every "
                  f"{r['certify_every']} steps" for r in results if r["reference_sin_max"] is not None) + "."]
    walls = [f"{r['preset']} {r['reference_seconds_per_step']:.2f} s" for r in results if r["reference_seconds_per_step"]]
    if walls:
        lines += ["", "Reference wall time per step after the switch (three branches, angle probes included, one "
                  "thread on a shared 2-core machine): " + "; ".join(walls) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    parser.add_argument("--angle-every", type=int, default=100, help="steps between angle measurements")
    parser.add_argument("--store", default=str(RESULTS / "fidelity_presets_store"))
    args = parser.parse_args()
    results = [measure(p, Path(args.store), args.angle_every) for p in args.presets]
    (RESULTS / "fidelity_presets.json").write_text(json.dumps(results, indent=2))
    text = markdown(results)
    (RESULTS / "fidelity_presets.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
