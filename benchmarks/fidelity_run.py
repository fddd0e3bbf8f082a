"""Run the paper protocol from the shipped `class` switch point, measuring subspace angles.

The reference of benchmarks/bench_fidelity.py: the `class` preset's phase 1 (SGD, η = 0.01,
batch 50, switch at step 2000; its minibatch sequence is shared by every setting, so all
settings start from the same parameters), then SGD / Dom-SGD / Bulk-SGD with the paper's
protocol after the switch: the Hessian of all 5000 training samples, subspace refreshed every
step. Rows go to a run store (default benchmarks/results/fidelity_store) as the engine logs them,
so a run stopped early is still readable, up to the step it reached.

Every ``--angle-every`` steps after the switch, along the Dom-SGD and Bulk-SGD trajectories of
the paper protocol, it measures at the same parameters θ_t:
- ``sine_1000`` / ``sine_500``: the largest principal-angle sine between the full-data top-k
  eigenspace and the top-k of the Hessian of the first 1000 (the `class` preset) or 500 (the
  notebooks' runs) training samples;
- ``sine_engine_1``: between the full-data top-k at θ_t and the engine's basis in use at step t
  (refreshed at θ_{t−1}): one step of staleness plus the solver's tolerance, the noise floor;
- ``sine_stale_10`` / ``sine_stale_20``: between the engine's full-data bases 10 / 20 steps apart
  (what refreshing every 10 / 20 steps costs: the staleness of a basis).
Written to <store>/angles.json, rewritten after each measurement.

Usage: OMP_NUM_THREADS=1 python benchmarks/fidelity_run.py [--horizon 1000] [--store DIR]
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch

from subspace_kit import HessianOperator
from subspace_kit.experiment import RunConfig, run
from subspace_kit.experiment.runner import Problem
from subspace_kit.theory.angles import principal_angles
from subspace_kit.threads import engine_threads
from subspace_kit.tracker import SubspaceTracker

HERE = Path(__file__).resolve().parent
SWITCH = 2000


def paper_protocol(horizon: int) -> RunConfig:
    """The `class` preset's phase 1, then the paper's protocol for ``horizon`` steps."""
    return RunConfig.preset("class", steps=SWITCH + horizon, refresh_every=1, hessian_samples=None,
                            switch_check_every=1000, log_every=10, checkpoint_every=10)


class AngleProbe:
    """Reads the engine's checkpoint every 10 steps and measures the angles (see module doc):
    against the top-k of the first ``samples`` training samples and between bases ``lags``
    steps apart (the `class` preset's by default; benchmarks/fidelity_presets.py passes others)."""

    def __init__(self, cfg: RunConfig, path: Path, every: int, samples=(1000, 500), lags=(10, 20)):
        self.cfg, self.path, self.every, self.samples, self.lags = cfg, path, every, samples, lags
        self.switch = cfg.switch_step
        self.problem = Problem.build(cfg)
        self.model = copy.deepcopy(self.problem.template)
        k = cfg.k
        self.trackers = {(mode, n): SubspaceTracker(k, oversample=cfg.oversample, tol=1e-3)
                         for mode in ("dom", "bulk") for n in (None, *samples)}
        self.history: dict[str, dict[int, torch.Tensor]] = {"dom": {}, "bulk": {}}
        self.rows: list[dict] = []
        self.seen: set = set()

    def basis(self, mode: str, n: int | None) -> torch.Tensor:
        X, Y = (self.problem.X, self.problem.Y) if n is None else (self.problem.X[:n], self.problem.Y[:n])
        H = HessianOperator(self.model, self.problem.loss_fn, X, Y)
        return self.trackers[(mode, n)].update(H).vectors

    def __call__(self, row: dict) -> None:
        t, mode = row["step"], row["mode"]
        if row["phase"] != "main" or mode not in ("dom", "bulk") or (t - self.switch) % 10 or (t, mode) in self.seen:
            return
        self.seen.add((t, mode))
        if not (self.path / "checkpoint.npz").exists():  # a finished run read back: angles.json has them
            return
        with np.load(self.path / "checkpoint.npz", allow_pickle=False) as ck:
            prefix = f"branches.{mode}."  # runner.RunState.state_dict's layout
            if int(ck["t"]) != t or prefix + "params" not in ck.files:  # the switch step: phase 1's checkpoint
                return
            engine_basis = torch.from_numpy(ck[prefix + "tracker.basis"])  # the engine's, refreshed at θ_{t−1}
            block = torch.from_numpy(ck[prefix + "tracker.block"])
            params = torch.from_numpy(ck[prefix + "params"]) if (t - self.switch) % self.every == 0 else None
        hist = self.history[mode]
        hist[t] = engine_basis
        for old in [s for s in hist if s < t - max(self.lags)]:
            del hist[old]
        if params is None:
            return
        torch.nn.utils.vector_to_parameters(params, self.model.parameters())
        self.trackers[(mode, None)].restore(block)  # warm start: a few products at θ_t
        full = self.basis(mode, None)
        out = {"step": t, "mode": mode, "sine_engine_1": float(principal_angles(full, engine_basis).max())}
        for n in self.samples:
            out[f"sine_{n}"] = float(principal_angles(full, self.basis(mode, n)).max())
        for lag in self.lags:
            if t - lag in hist:
                out[f"sine_stale_{lag}"] = float(principal_angles(engine_basis, hist[t - lag]).max())
        self.rows.append(out)
        (self.path / "angles.json").write_text(json.dumps(self.rows, indent=1))
        print(f"{time.strftime('%H:%M:%S')} {out}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", type=int, default=1000, help="steps after the switch")
    parser.add_argument("--angle-every", type=int, default=50, help="steps between angle measurements")
    parser.add_argument("--store", default=str(HERE / "results" / "fidelity_store"))
    args = parser.parse_args()
    cfg = paper_protocol(args.horizon)
    store = Path(args.store)
    probe = AngleProbe(cfg, store / cfg.key(), args.angle_every)
    with engine_threads():
        result = run(cfg, store=store, on_row=probe)
    print(result.status, result.summary.get("wall_seconds"))


if __name__ == "__main__":
    main()
