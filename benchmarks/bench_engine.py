"""Engine benchmark (issue 3): what per-step projection costs, what the `class` preset costs,
and what it gives up against the paper's protocol.

Measured in one run, on the paper's MLP and MNIST-5k, from one SGD point at step 2000:
1. per-step cost of SGD, Dom-SGD and Bulk-SGD steps, as a ratio to a plain SGD step, with the
   paper's protocol (full-data Hessian refreshed every step) and with the `class` setting;
2. SciPy `eigsh` recomputed from scratch every step (the approach of a public replication)
   against the warm-started tracker, at equal subspace accuracy: the speed-up factor;
3. fidelity of `class` against refresh-every-step on a short horizon: the subspace error of
   the class basis against a fresh full-data solve, and the Dom/Bulk losses side by side;
4. the `class` preset's full three-curve figure: wall time and peak memory (subprocess).

Writes benchmarks/results/engine.json and engine.md. Usage:
    python benchmarks/bench_engine.py [--quick]
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from subspace_kit import HessianOperator, top_eigen
from subspace_kit.experiment import RunConfig
from subspace_kit.experiment.problem import Problem, evaluate
from subspace_kit.experiment.trajectory import Trajectory
from subspace_kit.theory.angles import largest_sine

RESULTS = Path(__file__).parent / "results"


def sgd_point(cfg: RunConfig, steps: int):
    problem = Problem.build(cfg)
    base = Trajectory.start(problem)
    for t in range(steps):
        base.step(problem, t)
    return problem, base


def refresh_due(problem, traj, t: int, start: int) -> bool:
    """The engine's phase-2 refresh cadence of a projected trajectory switched at ``start``
    (unprojected ones are not refreshed here: nothing is measured)."""
    return traj.mode != "none" and (t - start) % problem.cfg.refresh_every == 0


def time_steps(problem, source, mode, start, n):
    br = source.fork(problem, mode)
    times = []
    for t in range(start, start + n):
        t0 = time.perf_counter()
        br.step(problem, t, refresh=refresh_due(problem, br, t, start))
        times.append(time.perf_counter() - t0)
    return statistics.mean(times), (br.hvps - source.hvps) / n, br


def main(quick: bool = False) -> dict:
    torch.manual_seed(0)
    warm, n = (300, 20) if quick else (2000, 60)
    paper_cfg = RunConfig.preset("class", refresh_every=1, hessian_samples=None)
    class_cfg = RunConfig.preset("class")
    out = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads",
           "torch": torch.__version__, "warmup_steps": warm, "steps_timed": n}

    # 1. per-step costs ------------------------------------------------------------------
    problem_p, base_p = sgd_point(paper_cfg, warm)
    problem_c = Problem.build(class_cfg)
    base_c = base_p.fork(problem_c, "none")  # same parameters, class-sized Hessian data
    base_p.refresh(problem_p, warm)
    base_c.refresh(problem_c, warm)
    sgd_s, _, _ = time_steps(problem_p, base_p, "none", warm, n)
    costs = {"sgd": {"seconds_per_step": sgd_s, "ratio": 1.0, "hvps_per_step": 0.0}}
    for label, problem, base in (("paper (refresh every step, 5000-sample Hessian)", problem_p, base_p),
                                 ("class (refresh every 10, 1000-sample Hessian)", problem_c, base_c)):
        for mode in ("dom", "bulk"):
            s, hvps, _ = time_steps(problem, base, mode, warm, n)
            costs[f"{mode} {label}"] = {"seconds_per_step": s, "ratio": s / sgd_s, "hvps_per_step": hvps}
    out["per_step"] = costs

    # 2. eigsh every step vs the tracker, at equal accuracy ------------------------------
    br = base_p.fork(problem_p, "none")  # follows SGD; we refresh its tracker by hand
    tracker_times, eigsh_times, tracker_err, eigsh_err, eigsh_hvps = [], [], [], [], []
    for t in range(warm, warm + (5 if quick else 15)):
        br.step(problem_p, t)
        H = HessianOperator(br.model, problem_p.loss_fn, problem_p.Xh, problem_p.Yh)
        t0 = time.perf_counter()
        res = br.tracker.update(H)
        tracker_times.append(time.perf_counter() - t0)
        ref = top_eigen(H, paper_cfg.k, tol=1e-5, method="lanczos")
        tracker_err.append(largest_sine(res.vectors, ref.vectors))
        before = H.num_matvecs
        t0 = time.perf_counter()
        sc = top_eigen(H, paper_cfg.k, tol=paper_cfg.tracker_tol, method="scipy")
        eigsh_times.append(time.perf_counter() - t0)
        eigsh_hvps.append(H.num_matvecs - before - paper_cfg.k)  # minus the residual check
        eigsh_err.append(largest_sine(sc.vectors, ref.vectors))
    out["eigsh_vs_tracker"] = {
        "tracker_seconds": statistics.median(tracker_times), "eigsh_seconds": statistics.median(eigsh_times),
        "speedup": statistics.median(eigsh_times) / statistics.median(tracker_times),
        "tracker_sin_max": max(tracker_err), "eigsh_sin_max": max(eigsh_err),
        "eigsh_hvps_median": statistics.median(eigsh_hvps), "tol": paper_cfg.tracker_tol}

    # 3. fidelity of class vs refresh-every-step ------------------------------------------
    horizon = 30 if quick else 150
    fid = {}
    for mode in ("dom", "bulk"):
        bp, bc = base_p.fork(problem_p, mode), base_c.fork(problem_c, mode)
        errs = []
        for t in range(warm, warm + horizon):
            bp.step(problem_p, t, refresh=refresh_due(problem_p, bp, t, warm))
            bc.step(problem_c, t, refresh=refresh_due(problem_c, bc, t, warm))
            if (t - warm) % 10 == 9:  # just before the class basis is refreshed: its stalest
                Hf = HessianOperator(bc.model, problem_c.loss_fn, problem_p.Xh, problem_p.Yh)
                ref = top_eigen(Hf, paper_cfg.k, tol=1e-4, method="lanczos")
                errs.append(largest_sine(bc.basis, ref.vectors))
        lp = evaluate(bp.model, problem_p.loss_fn, problem_p.X, problem_p.Y, problem_p.labels)[0]
        lc = evaluate(bc.model, problem_c.loss_fn, problem_c.X, problem_c.Y, problem_c.labels)[0]
        fid[mode] = {"loss_paper_protocol": lp, "loss_class": lc, "class_subspace_sin_median": statistics.median(errs),
                     "class_subspace_sin_max": max(errs)}
    l0 = evaluate(base_p.model, problem_p.loss_fn, problem_p.X, problem_p.Y, problem_p.labels)[0]
    out["fidelity"] = {"horizon_steps": horizon, "loss_at_switch": l0, **fid}

    # 4. the class preset's whole figure --------------------------------------------------
    if not quick:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "subspace_kit", "run", "--preset", "class", "--out", tmp],
                           check=True, capture_output=True)
            wall = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        out["class_figure"] = {"wall_seconds": wall, "peak_rss_mb": peak, "target_seconds": 180,
                               "target_rss_mb": 1536}
    return out


def markdown(r: dict) -> str:
    lines = [f"Measured {r['date']} on {r['machine']}, torch {r['torch']}; SGD point at step {r['warmup_steps']}, "
             f"{r['steps_timed']} steps timed per row.", "",
             "| step | seconds/step | × SGD step | HVPs/step |", "|---|---|---|---|"]
    for name, c in r["per_step"].items():
        lines.append(f"| {name} | {c['seconds_per_step']:.4f} | {c['ratio']:.1f} | {c['hvps_per_step']:.1f} |")
    e = r["eigsh_vs_tracker"]
    lines += ["", f"Per-step subspace refresh on the full 5000-sample Hessian (k=10, tol {e['tol']}): warm tracker "
              f"{e['tracker_seconds']:.2f} s (max sin vs tight solve {e['tracker_sin_max']:.1e}) vs SciPy eigsh from "
              f"scratch {e['eigsh_seconds']:.2f} s ({e['eigsh_hvps_median']:.0f} HVPs, max sin {e['eigsh_sin_max']:.1e}): "
              f"**{e['speedup']:.1f}× faster**."]
    f = r["fidelity"]
    lines += ["", f"Fidelity of `class` over {f['horizon_steps']} steps after the switch (loss at switch "
              f"{f['loss_at_switch']:.4f}):", "", "| mode | loss, paper protocol | loss, class | class subspace sin (median / max) |",
              "|---|---|---|---|"]
    for mode in ("dom", "bulk"):
        m = f[mode]
        lines.append(f"| {mode} | {m['loss_paper_protocol']:.4f} | {m['loss_class']:.4f} | "
                     f"{m['class_subspace_sin_median']:.2f} / {m['class_subspace_sin_max']:.2f} |")
    if "class_figure" in r:
        c = r["class_figure"]
        lines += ["", f"`class` preset, whole three-curve run: {c['wall_seconds']:.0f} s (target ≤ {c['target_seconds']} s), "
                  f"peak memory {c['peak_rss_mb']:.0f} MB (target < {c['target_rss_mb']} MB)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a few steps only (checks the script runs)")
    args = parser.parse_args()
    result = main(args.quick)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "engine_quick" if args.quick else "engine"
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2))
    (RESULTS / f"{name}.md").write_text(markdown(result))
    print(markdown(result))
