"""Curvature benchmark (issue 2): HVP cost, cold top-10 solvers against SciPy and peer libraries,
and per-step subspace tracking, on the paper's MLP after 2000 SGD steps on MNIST-5k.

    python benchmarks/bench_curvature.py            # ~5 min on an idle 2-core machine
    python benchmarks/bench_curvature.py --quick    # fewer repeats and tracking steps

Writes ``benchmarks/results/curvature.json`` and ``benchmarks/results/curvature.md``.
Peers (optional; each one missing is recorded as such):
    pip install -c constraints.txt torch==2.13.0 pyhessian hessian-eigenthings curvlinops-for-pytorch
    pip uninstall -y torchvision   # pulled in by backpack, unused here, and broken beside torch 2.13.0+cpu
Timings on a shared machine are noisy: every cost is a median over repeats, and costs are given
as ratios to a full-data gradient measured in the same run.
"""
from __future__ import annotations

import argparse
import copy
import importlib
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from subspace_kit import HessianOperator, SubspaceTracker, top_eigen
from subspace_kit.datasets import load
from subspace_kit.losses import mse
from subspace_kit.models import build_model
from subspace_kit.theory.angles import largest_sine

K, TOL = 10, 1e-3
PYHESSIAN_CAP = 600  # deflated power iteration needs ~100 HVPs per eigenvalue here; cap the run time
RESULTS = Path(__file__).resolve().parent / "results"


# ---------------------------------------------------------------------------- helpers
class Counted:
    """Wraps an operator: counts columns multiplied and remembers when each product started."""

    def __init__(self, H):
        self.H, self.shape, self.dtype = H, H.shape, H.dtype
        self.device = getattr(H, "device", torch.device("cpu"))
        self.columns, self.starts = 0, []

    def __matmul__(self, V):
        self.starts.append(time.perf_counter())
        self.columns += 1 if V.ndim == 1 else V.shape[1]
        return self.H @ V


def machine() -> dict:
    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"date": datetime.datetime.now().isoformat(timespec="seconds"), "cpu": cpu, "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "torch": torch.__version__, "platform": platform.platform(), "loadavg_start": os.getloadavg()}


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def train_point(data, steps: int, seed: int = 0) -> nn.Module:
    model = build_model("mlp", input_shape=data.input_shape, num_classes=data.num_classes, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(steps):
        idx = torch.randint(len(data), (50,), generator=gen)
        opt.zero_grad()
        mse(model(data.X[idx]), data.Y[idx]).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return model


def gradient_seconds(model, data) -> float:
    """Seconds for one full-data loss and gradient (forward + backward)."""
    params = list(model.parameters())
    start = time.perf_counter()
    torch.autograd.grad(mse(model(data.X), data.Y), params)
    return time.perf_counter() - start


# ---------------------------------------------------------------------------- 1. HVP cost
def hvp_costs(model, data, repeats: int) -> dict:
    P = sum(p.numel() for p in model.parameters())
    gen = torch.Generator().manual_seed(0)
    v, V = torch.randn(P, generator=gen), torch.randn(P, 12, generator=gen)
    rows = {key: [] for key in ("reverse_1", "reverse_12", "reverse_fresh_1", "reverse_fresh_12",
                                "forward_1", "forward_12")}
    cached = HessianOperator(model, mse, data.X, data.Y, backend="reverse")
    cached @ v  # builds the graph once; an eigensolver at one point reuses it
    forward = HessianOperator(model, mse, data.X, data.Y, backend="forward")
    forward @ v
    for _ in range(repeats):  # interleaved, so each ratio compares runs under the same load
        g = statistics.median(gradient_seconds(model, data) for _ in range(3))
        rows["reverse_1"].append(median_time(lambda: cached @ v, 3) / g)
        rows["reverse_12"].append(median_time(lambda: cached @ V, 1) / g / 12)
        rows["reverse_fresh_1"].append(
            median_time(lambda: HessianOperator(model, mse, data.X, data.Y, backend="reverse") @ v, 1) / g)
        rows["reverse_fresh_12"].append(
            median_time(lambda: HessianOperator(model, mse, data.X, data.Y, backend="reverse") @ V, 1) / g / 12)
        rows["forward_1"].append(median_time(lambda: forward @ v, 1) / g)
        rows["forward_12"].append(median_time(lambda: forward @ V, 1) / g / 12)
        rows.setdefault("gradient_seconds", []).append(g)
    return {key: statistics.median(vals) for key, vals in rows.items()}


# ---------------------------------------------------------------------------- 2. cold solvers
def check(result_values, result_vectors, H_check, ref) -> dict:
    """Agreement with the reference top-10 and residuals computed with our operator."""
    values = torch.as_tensor(result_values, dtype=torch.float64).flatten()
    vectors = torch.as_tensor(result_vectors).to(torch.float32)
    order = torch.argsort(values, descending=True)
    values, vectors = values[order][:K], vectors[:, order][:, :K]
    vectors = vectors / torch.linalg.vector_norm(vectors, dim=0)
    HV = (H_check @ vectors).double()
    res = torch.linalg.vector_norm(HV - vectors.double() * values, dim=0) / values.abs()
    rel = (values - ref.values.double()).abs() / ref.values.double().abs()
    return {"max_residual": float(res.max()), "max_eig_rel_err": float(rel.max()),
            "sin_vs_ref": largest_sine(vectors, ref.vectors), "top_eigenvalues": values.tolist()}


def run_ours(model, data, method: str, H_check, ref) -> dict:
    H = Counted(HessianOperator(model, mse, data.X, data.Y))
    start = time.perf_counter()
    r = top_eigen(H, K, tol=TOL, method=method)
    seconds = time.perf_counter() - start
    hvps = r.matvecs
    if method == "scipy":  # top_eigen(method="scipy") adds one block of K products for its residuals
        hvps, seconds = r.matvecs - K, H.starts[-1] - start
    return {"hvps": hvps, "seconds": seconds, "converged": r.converged, **check(r.values, r.vectors, H_check, ref)}


def run_pyhessian(model, data, H_check, ref, **settings) -> dict:
    ph = importlib.import_module("pyhessian.hessian")  # the package rebinds .hessian to the class

    model = copy.deepcopy(model)
    count = [0]
    original = ph.hessian_vector_product

    def counted(gradsH, params, v):
        count[0] += 1
        if count[0] > PYHESSIAN_CAP:
            raise RuntimeError(f"gave up after {PYHESSIAN_CAP} HVPs ({time.perf_counter() - start:.0f} s) "
                               "without finishing the top-10")
        return original(gradsH, params, v)

    ph.hessian_vector_product = counted
    start = time.perf_counter()
    try:
        torch.manual_seed(0)
        solver = ph.hessian(model, mse, data=(data.X, data.Y), cuda=False)
        values, vectors = solver.eigenvalues(top_n=K, **settings)
        seconds = time.perf_counter() - start
    finally:
        ph.hessian_vector_product = original
    flat = torch.stack([torch.cat([t.detach().reshape(-1) for t in vec]) for vec in vectors], 1)
    return {"hvps": count[0], "seconds": seconds, **check(values, flat, H_check, ref)}


def run_eigenthings(model, data, H_check, ref, **settings) -> dict:
    import hessian_eigenthings as he

    model = copy.deepcopy(model)
    op = he.HessianOperator(model, [(data.X, data.Y)], he.supervised_loss(mse))
    count = [0]
    original = op.matvec

    def counted(v):
        count[0] += 1
        return original(v)

    op.matvec = counted
    start = time.perf_counter()
    r = he.lanczos(op, k=K, seed=0, **settings)
    seconds = time.perf_counter() - start
    return {"hvps": count[0], "seconds": seconds, **check(r.eigenvalues, r.eigenvectors.T, H_check, ref)}


def run_curvlinops(model, data, H_check, ref, *, check_deterministic=True, **settings) -> dict:
    from curvlinops import HessianLinearOperator
    from scipy.sparse.linalg import LinearOperator, eigsh

    class MeanMSE(nn.Module):  # the kit's MSE; reduction "mean" tells curvlinops to weight by n_batch/N
        reduction = "mean"

        def forward(self, outputs, targets):
            return mse(outputs, targets)

    model = copy.deepcopy(model)
    start = time.perf_counter()
    Hc = HessianLinearOperator(model, MeanMSE(), [p for p in model.parameters()], [(data.X, data.Y)],
                               check_deterministic=check_deterministic).to_scipy()
    count = [0]

    def matmat(x):
        x = np.asarray(x).reshape(Hc.shape[0], -1)
        count[0] += x.shape[1]
        return Hc.matmat(x.astype(np.float32))

    op = LinearOperator(Hc.shape, matvec=lambda x: matmat(x)[:, 0], matmat=matmat, dtype=np.float32)
    values, vectors = eigsh(op, k=K, which="LA", **settings)
    seconds = time.perf_counter() - start
    return {"hvps": count[0], "seconds": seconds,
            **check(values, torch.from_numpy(vectors.copy()), H_check, ref)}


def peers(model, data, H_check, ref) -> dict:
    runs = {
        ("pyhessian", "default (power iteration, maxIter=100, tol=1e-3)"): lambda: run_pyhessian(
            model, data, H_check, ref),
        ("pyhessian", "tuned (maxIter=150, tol=1e-6)"): lambda: run_pyhessian(
            model, data, H_check, ref, maxIter=150, tol=1e-6),
        ("hessian-eigenthings", "default (lanczos, max_iter=2k, which='LM')"): lambda: run_eigenthings(
            model, data, H_check, ref),
        ("hessian-eigenthings", "tuned (max_iter=40, which='LA')"): lambda: run_eigenthings(
            model, data, H_check, ref, max_iter=40, which="LA", reorthogonalize=True),
        ("curvlinops-for-pytorch", "default (eigsh tol=0, deterministic check)"): lambda: run_curvlinops(
            model, data, H_check, ref),
        ("curvlinops-for-pytorch", "tuned (eigsh tol=1e-3, no check)"): lambda: run_curvlinops(
            model, data, H_check, ref, check_deterministic=False, tol=TOL),
    }
    out = {}
    for (library, setting), fn in runs.items():
        try:
            out[f"{library} | {setting}"] = fn()
        except ImportError as exc:
            out[f"{library} | {setting}"] = {"error": f"not installed: {exc}"}
        except Exception as exc:  # a peer that fails to run is recorded, not hidden
            out[f"{library} | {setting}"] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"  {library} | {setting}: {out[f'{library} | {setting}']}", flush=True)
    return out


# ---------------------------------------------------------------------------- 3. tracking
def tracking(model, data, steps: int) -> dict:
    model = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    H = HessianOperator(model, mse, data.X, data.Y)
    tracker = SubspaceTracker(K)  # defaults: oversample=2, tol=1e-2, explicit acceptance (probes=0)
    cold = tracker.update(H)
    rows = []
    for _ in range(steps):
        idx = torch.randint(len(data), (50,), generator=gen)
        opt.zero_grad()
        mse(model(data.X[idx]), data.Y[idx]).backward()
        opt.step()
        start = time.perf_counter()
        r = tracker.update(H)  # includes building the new point's gradient graph
        seconds = time.perf_counter() - start
        g = gradient_seconds(model, data)
        start = time.perf_counter()
        fresh = top_eigen(HessianOperator(model, mse, data.X, data.Y), K, tol=TOL, method="lanczos")
        fresh_seconds = time.perf_counter() - start
        ref = top_eigen(H, K, tol=1e-5, method="lanczos")
        rows.append({"method": r.method, "hvps": r.matvecs, "seconds": seconds, "gradient_seconds": g,
                     "sin_vs_fresh": largest_sine(r.vectors, ref.vectors), "reported_residual": float(r.residuals.max()),
                     "cold_lanczos_hvps": fresh.matvecs, "cold_lanczos_seconds": fresh_seconds})
        print(f"  step: {rows[-1]}", flush=True)
    med = lambda key: statistics.median(row[key] for row in rows)  # noqa: E731
    return {"cold_hvps": cold.matvecs, "steps": rows, "median_hvps": med("hvps"), "median_seconds": med("seconds"),
            "max_sin_vs_fresh": max(row["sin_vs_fresh"] for row in rows),
            "median_update_over_gradient": statistics.median(row["seconds"] / row["gradient_seconds"] for row in rows),
            "median_cold_lanczos_hvps": med("cold_lanczos_hvps"), "median_cold_lanczos_seconds": med("cold_lanczos_seconds"),
            "methods": sorted({row["method"] for row in rows})}


# ---------------------------------------------------------------------------- report
def markdown(res: dict) -> str:
    m, h, t = res["machine"], res["hvp"], res["tracking"]
    lines = [
        f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores, torch {m['torch']}, {m['torch_threads']} threads; "
        f"load average {m['loadavg_start'][0]:.1f} at start, {m['loadavg_end'][0]:.1f} at end: a shared machine). "
        f"Paper MLP (199,210 parameters) after 2000 SGD steps (η=0.01, batch 50), full MNIST-5k Hessian, k={K}. "
        f"One full-data gradient: {1e3 * h['gradient_seconds']:.0f} ms (median).",
        "",
        "**1. Cost of Hessian-vector products** (median ratio to one full-data gradient, same run)",
        "",
        "| route | one HVP | block of 12, per vector |",
        "|---|---|---|",
        f"| reverse, graph cached (what an eigensolver pays) | {h['reverse_1']:.2f} | {h['reverse_12']:.2f} |",
        f"| reverse, graph built for this call | {h['reverse_fresh_1']:.2f} | {h['reverse_fresh_12']:.2f} |",
        f"| forward-over-reverse (jvp∘grad, vmap) | {h['forward_1']:.2f} | {h['forward_12']:.2f} |",
        "",
        f"**2. Cold top-{K} to relative residual ≤ {TOL:g}** (residuals and agreement checked with our operator "
        "against a Lanczos reference at tol 1e-5)",
        "",
        "| solver | setting | HVPs | seconds | max residual | max eigenvalue rel. err | sin∠ vs ref |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in res["cold"].items():
        library, setting = name.split(" | ")
        if "error" in row:
            lines.append(f"| {library} | {setting} | – | – | failed: {row['error'][:120]} | | |")
        else:
            lines.append(f"| {library} | {setting} | {row['hvps']} | {row['seconds']:.1f} | {row['max_residual']:.1e} | "
                         f"{row['max_eig_rel_err']:.1e} | {row['sin_vs_ref']:.1e} |")
    lines += [
        "",
        f"**3. Tracking after one SGD step** ({len(t['steps'])} consecutive steps; tracker tol 1e-2, "
        f"oversample 2, explicit acceptance; paths used: {', '.join(t['methods'])})",
        "",
        "| | HVPs per update | seconds per update | sin∠ vs fresh tight solve (max) |",
        "|---|---|---|---|",
        f"| SubspaceTracker.update | {t['median_hvps']:.0f} | {t['median_seconds']:.2f} "
        f"({t['median_update_over_gradient']:.1f} gradients) | {t['max_sin_vs_fresh']:.1e} |",
        f"| cold Lanczos to {TOL:g} each step | {t['median_cold_lanczos_hvps']:.0f} | "
        f"{t['median_cold_lanczos_seconds']:.2f} | – |",
        "",
        "**Targets** " + "; ".join(f"{k}: {v}" for k, v in res["targets"].items()),
    ]
    return "\n".join(lines) + "\n"


def targets(res: dict) -> dict:
    cold, h, t = res["cold"], res["hvp"], res["tracking"]
    ours = {k: v for k, v in cold.items() if k.startswith("subspace_kit")}
    scipy_hvps = cold["scipy eigsh | method='scipy'"]["hvps"]
    best_ours = min(v["seconds"] for v in ours.values())
    peer_secs = {k: v["seconds"] for k, v in cold.items() if not k.startswith(("subspace_kit", "scipy")) and "error" not in v}
    lanczos = cold["subspace_kit | lanczos"]
    verdict = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    return {
        "block HVP ≤ 1.5 gradients per vector": f"{verdict(h['reverse_12'] <= 1.5)} ({h['reverse_12']:.2f})",
        "Lanczos HVPs ≤ eigsh": f"{verdict(lanczos['hvps'] <= scipy_hvps)} ({lanczos['hvps']} vs {scipy_hvps})",
        "faster than every peer": f"{verdict(all(best_ours < s for s in peer_secs.values()))} "
                                  f"(ours {best_ours:.1f} s; fastest peer {min(peer_secs.values(), default=float('nan')):.1f} s)",
        "tracking ≤ 16 HVPs and sin ≤ 1e-2": f"{verdict(t['median_hvps'] <= 16 and t['max_sin_vs_fresh'] <= 1e-2)} "
                                             f"({t['median_hvps']:.0f} HVPs, sin {t['max_sin_vs_fresh']:.1e})",
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and tracking steps")
    parser.add_argument("--no-peers", action="store_true", help="skip the peer libraries")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads; on a busy shared machine 1 avoids thread contention "
                             "(measured 27x faster SGD steps there than 2 threads)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats, steps = (3, 3) if args.quick else (5, 6)
    res = {"machine": machine(), "settings": {"k": K, "tol": TOL, "train_steps": 2000, "lr": 0.01, "batch": 50}}
    data = load("mnist-5k")
    print("training 2000 SGD steps ...", flush=True)
    model = train_point(data, 2000)
    print("1. HVP cost ...", flush=True)
    res["hvp"] = hvp_costs(model, data, repeats)
    print(f"  {res['hvp']}", flush=True)
    print("2. cold solvers ...", flush=True)
    H_check = HessianOperator(model, mse, data.X, data.Y)
    ref = top_eigen(H_check, K, tol=1e-5, method="lanczos")
    cold = {}
    for method in ("lanczos", "block"):
        cold[f"subspace_kit | {method}"] = run_ours(model, data, method, H_check, ref)
        print(f"  {method}: {cold[f'subspace_kit | {method}']}", flush=True)
    scipy_row = cold["scipy eigsh | method='scipy'"] = run_ours(model, data, "scipy", H_check, ref)
    print(f"  scipy: {scipy_row}", flush=True)
    if not args.no_peers:
        cold.update(peers(model, data, H_check, ref))
    res["cold"] = cold
    print("3. tracking ...", flush=True)
    res["tracking"] = tracking(model, data, steps)
    res["machine"]["loadavg_end"] = os.getloadavg()
    res["targets"] = targets(res)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "curvature.json").write_text(json.dumps(res, indent=2))
    (RESULTS / "curvature.md").write_text(markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
