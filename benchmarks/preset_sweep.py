"""Phase 1 only (plain SGD, no switch) of candidate settings for the CNN and Transformer presets:
is λ1 clearly below 2/η (the paper's SGD regime, not the Edge of Stability), does SGD learn
(training accuracy), does its gradient align (χ_k of the full gradient)?

Each candidate is the preset with the overrides listed in ``CANDIDATES``, run with modes
("none",) and the switch at the last step, χ and λ1 measured every ``switch_check_every`` steps
on the preset's Hessian samples. Runs go to a run store (default /tmp), one at a time; a line per
check is appended to benchmarks/results/preset_sweep.jsonl.

Usage: OMP_NUM_THREADS=1 python benchmarks/preset_sweep.py NAME [NAME ...]   (names of CANDIDATES)
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from subspace_kit.experiment import RunConfig, run
from subspace_kit.threads import engine_threads

OUT = Path(__file__).resolve().parent / "results" / "preset_sweep.jsonl"

CANDIDATES = {
    "transformer_lr0.05": ("transformer-class", dict(lr=0.05, steps=1000)),
    "transformer_lr0.03": ("transformer-class", dict(lr=0.03, steps=1000)),
    "cnn_lr0.005": ("cnn-class", dict(lr=0.005, steps=500)),
    "cnn_lr0.003": ("cnn-class", dict(lr=0.003, steps=500)),
    # fewer sentences: can SGD fit them (training accuracy well above chance) in a class budget?
    "transformer_n200_lr0.05": ("transformer-class", dict(n_train=200, lr=0.05, steps=1000)),
    "transformer_n200_lr0.02": ("transformer-class", dict(n_train=200, lr=0.02, steps=1500)),
    "transformer_n200_lr0.01": ("transformer-class", dict(n_train=200, lr=0.01, steps=2000)),
}


def phase1(preset: str, overrides: dict) -> RunConfig:
    cfg = RunConfig.preset(preset, **overrides)
    return cfg.replace(modes=("none",), switch="step", switch_step=cfg.steps, switch_check_every=100,
                       log_every=50, checkpoint_every=100000)


def main(names) -> None:
    for name in names:
        preset, overrides = CANDIDATES[name]
        cfg = phase1(preset, overrides)
        start = time.time()
        with engine_threads():
            result = run(cfg, store="/tmp/verdicts/sweep_store")
        wall = time.time() - start
        for r in result.rows:
            if r["alignment_full"] == r["alignment_full"]:
                line = {"candidate": name, "key": cfg.key(), "lr": cfg.lr, "two_over_lr": 2 / cfg.lr,
                        "step": r["step"], "train_loss": r["train_loss"], "train_acc": r["train_acc"],
                        "chi": r["alignment_full"], "lambda1": r["sharpness"], "wall_s": round(wall, 1)}
                print(json.dumps(line), flush=True)
                with open(OUT, "a") as fh:
                    fh.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:] or list(CANDIDATES))
