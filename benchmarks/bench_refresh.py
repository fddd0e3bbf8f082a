"""Cheaper per-step refreshes of the dominant subspace: cost against fidelity along one trajectory.

The paper's protocol needs the top-k eigenspace of the full-data Hessian at every step. This
script walks one plain-SGD trajectory of the paper's MLP on MNIST-5k (η = 0.01, batch 50, the
kit's MSE) after ``--warmup`` steps, and lets several refresh methods follow it, every step:

- ``tracker``: ``SubspaceTracker`` (tol 1e-2), explicit acceptance (the default now);
- ``tracker-probes``: the old randomized acceptance (``probes=4``); each accepted "estimated"
  update is also checked explicitly (products not charged) to count how often a bad one passes;
- ``block-rR``: ``update(H, refresh="block")`` every R steps: subspace iteration, one block of
  k + oversample HVPs with Rayleigh-Ritz (the basis stays fixed in between);
- ``rotate-pP``: ``update(H, refresh="rotate", columns=P)`` every step: a rotating partial block,
  P of the k basis vectors get one power step, so the basis is renewed every k/P steps;
- ``stochastic-sS``: ``update(H_S, refresh="block")`` every step, H_S the Hessian of a fresh
  random subsample of S of the 5000 samples (noise averaged by the warm start).

Cost: full-data HVPs per projected step (a subsample HVP counts S/n of one), converted to
full-data gradients with the ratio measured here (time of one block of k + oversample HVPs at
fresh parameters / (k + oversample) / time of one full-data gradient), plus the step's own
minibatch gradient (batch/n). Fidelity: sin of the largest principal angle between the method's
basis and a tight Lanczos solve (tol 1e-4) every ``--check-every`` steps, taken on the step just
before a refresh of the R-methods (the stalest moment).

Full run: ``OMP_NUM_THREADS=1 PYTHONPATH=$PWD python benchmarks/bench_refresh.py --warmup 1000
--steps 100 --check-every 10``; results in ``benchmarks/results/refresh.{json,md}``.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from subspace_kit import HessianOperator, SubspaceTracker, top_eigen
from subspace_kit.datasets import load
from subspace_kit.eigen import seeded_block
from subspace_kit.losses import mse
from subspace_kit.models import build_model
from subspace_kit.theory.angles import largest_sine

HERE = Path(__file__).resolve().parent
K, OVERSAMPLE = 10, 2


# ------------------------------------------------------------------------------- methods
class Tracker:
    def __init__(self, probes: int = 0):
        self.tracker = SubspaceTracker(K, oversample=OVERSAMPLE, tol=1e-2, probes=probes)
        self.estimated = self.bad_estimated = 0

    def refresh(self, t, H, sub):
        result = self.tracker.update(H)
        if result.method == "estimated":  # audit the randomized acceptance, uncharged
            self.estimated += 1
            HV = H @ result.vectors
            true = torch.linalg.vector_norm(HV - result.vectors * result.values, dim=0) / result.values.abs()
            self.bad_estimated += int(float(true.max()) > self.tracker.tol)
        return result.matvecs

    def basis(self):
        return self.tracker.basis


class Cheap:
    """``SubspaceTracker.update(op, refresh=mode)`` every ``every`` steps, ``op`` the full-data
    Hessian or one of a fresh random subsample of ``subsample`` samples."""

    def __init__(self, H, mode: str, every: int = 1, columns: int = 2, subsample: int | None = None):
        self.tracker = SubspaceTracker(K, oversample=OVERSAMPLE, tol=1e-2)
        self.tracker.update(H)  # the same cold start as the others
        self.mode, self.every, self.columns, self.subsample = mode, every, columns, subsample

    def refresh(self, t, H, sub):
        if t % self.every:
            return 0.0
        op = sub(self.subsample) if self.subsample else H
        result = self.tracker.update(op, refresh=self.mode, columns=self.columns)
        return result.matvecs * (self.subsample / H.n if self.subsample else 1.0)

    def basis(self):
        return self.tracker.basis


# ------------------------------------------------------------------------------- the walk
def sgd_steps(model, data, steps: int, gen: torch.Generator, lr=0.01, batch=50):
    """``steps`` plain SGD steps in place (the engine's settings: η, batch 50, the kit's MSE)."""
    params = [p for p in model.parameters()]
    for _ in range(steps):
        idx = torch.randint(len(data.X), (batch,), generator=gen)
        loss = mse(model(data.X[idx]), data.Y[idx])
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.sub_(lr * g)


def cost_ratio(model, data) -> dict:
    """Seconds of a full-data gradient and of one HVP inside a fresh block of k + oversample."""
    params = [p for p in model.parameters()]
    grad_s, block_s = [], []
    for rep in range(3):
        start = time.perf_counter()
        torch.autograd.grad(mse(model(data.X), data.Y), params)
        grad_s.append(time.perf_counter() - start)
        H = HessianOperator(model, mse, data.X, data.Y)
        X = seeded_block(H.shape[0], K + OVERSAMPLE, H.dtype, H.device, seed=rep)
        start = time.perf_counter()
        H @ X
        block_s.append(time.perf_counter() - start)
    g, b = statistics.median(grad_s), statistics.median(block_s) / (K + OVERSAMPLE)
    return dict(gradient_s=g, hvp_in_block_s=b, gradients_per_hvp=b / g)


def walk(args) -> dict:
    torch.manual_seed(0)
    data = load("mnist-5k")
    model = build_model("mlp", data=data, seed=0)
    gen = torch.Generator().manual_seed(0)
    sgd_steps(model, data, args.warmup, gen)
    ratio = cost_ratio(model, data)
    H = HessianOperator(model, mse, data.X, data.Y)
    sub_gen = torch.Generator().manual_seed(1)

    def sub(size):
        idx = torch.randperm(len(data.X), generator=sub_gen)[:size]
        return HessianOperator(model, mse, data.X[idx], data.Y[idx])

    methods = {} if args.no_trackers else {"tracker": Tracker(), "tracker-probes": Tracker(probes=4)}
    for r in args.every:
        methods[f"block-r{r}"] = Cheap(H, "block", every=r)
    for p in args.rotate:
        methods[f"rotate-p{p}"] = Cheap(H, "rotate", columns=p)
    for s in args.subsample:
        methods[f"stochastic-s{s}"] = Cheap(H, "block", subsample=s)
    for m in methods.values():
        if isinstance(m, Tracker):
            m.tracker.update(H)  # every method starts from the same cold solve
    hvps = {name: 0.0 for name in methods}
    seconds = {name: 0.0 for name in methods}
    sins = {name: [] for name in methods}
    checks = []
    for t in range(1, args.steps + 1):
        sgd_steps(model, data, 1, gen)
        for name, m in methods.items():
            begin = time.perf_counter()
            hvps[name] += m.refresh(t, H, sub)
            seconds[name] += time.perf_counter() - begin
        if t % args.check_every == args.check_every - 1:
            exact = top_eigen(H, K, tol=1e-4, method="lanczos").vectors
            checks.append(t)
            for name, m in methods.items():
                sins[name].append(largest_sine(m.basis(), exact))
            print(t, {n: round(s[-1], 4) for n, s in sins.items()}, flush=True)
    return dict(ratio=ratio, methods=methods, hvps=hvps, seconds=seconds, sins=sins, checks=checks)


def report(out: dict, args) -> dict:
    ratio, steps, batch_share = out["ratio"], args.steps, 50 / 5000
    rows = []
    for name, m in out["methods"].items():
        hvp = out["hvps"][name] / steps
        row = dict(method=name, hvps_per_step=hvp, gradients_per_step=hvp * ratio["gradients_per_hvp"] + batch_share,
                   seconds_per_step=out["seconds"][name] / steps, sin_median=statistics.median(out["sins"][name]),
                   sin_max=max(out["sins"][name]), sins=out["sins"][name])
        if isinstance(m, Tracker):
            row.update(estimated=m.estimated, bad_estimated=m.bad_estimated)
        rows.append(row)
    return dict(rows=rows, checks=out["checks"], ratio=ratio)


def write(result: dict, args) -> None:
    meta = dict(when=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), machine=platform.machine(),
                torch=torch.__version__, threads=torch.get_num_threads(), **vars(args))
    HERE.joinpath("results").mkdir(exist_ok=True)
    (HERE / "results" / f"{args.name}.json").write_text(json.dumps(dict(meta=meta, **result), indent=1) + "\n")
    (HERE / "results" / f"{args.name}.md").write_text(render(dict(meta=meta, **result)))


def paper_run_hours(gradients_per_step: float, certify_hvps: float, gradient_s: float, sgd_step_s: float,
                    *, steps=20_000, switch=2_000, certify_every=100, gradients_per_hvp=1.37) -> float:
    """Hours for the paper's three-curve run: every step of all three branches plus, for the two
    projected branches, the refresh and an exact certification every ``certify_every`` steps."""
    projected = steps - switch
    seconds = steps * sgd_step_s + 2 * projected * (sgd_step_s + gradients_per_step * gradient_s)
    seconds += 2 * (projected / certify_every) * certify_hvps * gradients_per_hvp * gradient_s
    return seconds / 3600


def render(saved: dict) -> str:
    """The markdown table of a saved result (``refresh.json``)."""
    meta, r, rows = saved["meta"], saved["ratio"], saved["rows"]
    lines = [f"Measured {meta['when']}, {meta['threads']} torch thread(s), torch {meta['torch']}; paper MLP on "
             f"MNIST-5k after {meta['warmup']} SGD steps, then {meta['steps']} SGD steps; every method refreshed "
             f"every step (block-rR: every R steps); sin vs a tight solve (tol 1e-4) at steps "
             f"{', '.join(map(str, saved['checks']))}.", "",
             f"Full-data gradient {r['gradient_s'] * 1e3:.0f} ms, one HVP inside a block of {K + OVERSAMPLE} "
             f"{r['hvp_in_block_s'] * 1e3:.0f} ms = {r['gradients_per_hvp']:.2f} gradients (machine shared: "
             "seconds are pessimistic, the ratio is measured in the same run). Cost per projected step in "
             "full-data gradients = HVPs x that ratio + the minibatch gradient (50/5000).", "",
             "| method | HVPs / step | full-data gradients / step | s / step (refresh) | sin median | sin max |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['method']} | {row['hvps_per_step']:.2f} | {row['gradients_per_step']:.2f} | "
                     f"{row['seconds_per_step']:.2f} | {row['sin_median']:.3f} | {row['sin_max']:.3f} |")
    probe = next((x for x in rows if x["method"] == "tracker-probes"), None)
    if probe:
        lines += ["", f"Randomized acceptance (probes=4): {probe['bad_estimated']} of {probe['estimated']} accepted "
                  "'estimated' updates had a true relative residual above tol = 1e-2."]
    tracker = next((x for x in rows if x["method"] == "tracker"), None)
    cert = tracker["hvps_per_step"] if tracker else meta.get("cert_hvps", 24)
    lines += ["",
              "Estimated wall time of the paper's three-curve run (20,000 steps, switch at 2,000, an exact "
              f"tracker update to certify every 100 steps, costed at {cert:.0f} HVPs: the `tracker` row's, or "
              "--cert-hvps), one thread: with "
              "this run's (loaded) gradient time and an SGD step of 0.4 gradients, and with the quiet machine's "
              "34 ms per gradient and 13.5 ms per SGD step (issue 13 / `engine.md`).", "",
              "| method | sin max | hours (this run) | hours (quiet) |", "|---|---|---|---|"]
    for row in rows:
        here = paper_run_hours(row["gradients_per_step"], cert, r["gradient_s"], 0.4 * r["gradient_s"],
                               gradients_per_hvp=r["gradients_per_hvp"])
        quiet = paper_run_hours(row["gradients_per_step"], cert, 0.034, 0.0135, gradients_per_hvp=r["gradients_per_hvp"])
        lines.append(f"| {row['method']} | {row['sin_max']:.3f} | {here:.1f} | {quiet:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--check-every", type=int, default=10)
    parser.add_argument("--every", type=int, nargs="*", default=[1, 2, 5])
    parser.add_argument("--rotate", type=int, nargs="*", default=[2])
    parser.add_argument("--subsample", type=int, nargs="*", default=[500, 1000])
    parser.add_argument("--no-trackers", action="store_true", help="only the cheap methods (longer horizons)")
    parser.add_argument("--cert-hvps", type=float, default=24.0,
                        help="HVPs of one full tracker update, for the estimate when the tracker rows are skipped")
    parser.add_argument("--name", default="refresh", help="results file name in benchmarks/results (no suffix)")
    parser.add_argument("--render", action="store_true", help="only rewrite refresh.md from refresh.json")
    args = parser.parse_args()
    if args.render:
        saved = json.loads((HERE / "results" / f"{args.name}.json").read_text())
        (HERE / "results" / f"{args.name}.md").write_text(render(saved))
        return
    torch.set_num_threads(1)
    result = report(walk(args), args)
    write(result, args)
    for row in result["rows"]:
        print(row["method"], round(row["gradients_per_step"], 2), round(row["sin_median"], 4), round(row["sin_max"], 4))


if __name__ == "__main__":
    main()
