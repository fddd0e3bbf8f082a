"""Contention table: a short class-like run at several thread settings, alone, beside busy
processes, and pinned to one CPU.

Each measurement is a fresh child process (``--child``) that runs ``RunConfig.preset("class")``
truncated to ``--steps`` (switch at ``--switch``) into a temporary store through
``subspace_kit.experiment.run`` inside ``engine_threads()``, and prints its wall time. Settings:

- ``1``, ``2``: that many torch threads for everything;
- ``2-passive``: 2 threads with ``OMP_WAIT_POLICY=PASSIVE`` (idle OpenMP threads sleep instead
  of spinning);
- ``auto``: ``SUBSPACE_KIT_THREADS=auto`` (idle CPUs by the load average at the start).

The default policy (no ``SUBSPACE_KIT_THREADS``) is 1 thread, i.e. the ``1`` row.

Conditions: ``alone``; ``busy`` (two ``python -c 'while True: pass'`` processes beside it, killed
after); ``cpu0`` (the child pinned with ``taskset -c 0``). Each row records the 1-minute load
average before and after it, and its ratio to the best setting of the same condition *in the same
run*: the machine may be shared, so compare ratios, not seconds across runs.

Full measurement (quiet machine, ~15-25 min):
    OMP_NUM_THREADS=1 PYTHONPATH=$PWD python benchmarks/bench_threads.py --steps 800 --switch 400 --repeats 2
Reduced: ``--steps 400 --switch 200 --repeats 1``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
THREADS_ENV = "SUBSPACE_KIT_THREADS"
SETTINGS = ("1", "2", "2-passive", "auto")
CONDITIONS = ("alone", "busy", "cpu0")


def child(steps: int, switch: int) -> None:
    """Run the truncated class preset once and print ``{"seconds": ..., "threads": ...}``."""
    import torch

    from subspace_kit.experiment import RunConfig, run
    from subspace_kit.threads import engine_threads

    cfg = RunConfig.preset("class", steps=steps, switch_step=switch, checkpoint_every=max(steps, 200))
    with tempfile.TemporaryDirectory() as store, engine_threads() as threads:
        start = time.perf_counter()
        result = run(cfg, store=store)
        seconds = time.perf_counter() - start
        status = result.status
    print(json.dumps({"seconds": seconds, "threads": threads, "status": status,
                      "torch_threads_after": torch.get_num_threads()}))


def _env(setting: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in (THREADS_ENV, "OMP_WAIT_POLICY", "OMP_NUM_THREADS"):
        env.pop(name, None)
    if setting == "auto":
        env[THREADS_ENV] = "auto"
        return env
    threads = setting.split("-")[0]
    env.update({THREADS_ENV: threads, "OMP_NUM_THREADS": threads})
    if setting.endswith("passive"):
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    return env


def measure(setting: str, condition: str, steps: int, switch: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--steps", str(steps), "--switch", str(switch)]
    if condition == "cpu0":
        cmd = ["taskset", "-c", "0"] + cmd
    spinners = []
    if condition == "busy":
        spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
        time.sleep(1.0)
    load_before = os.getloadavg()[0]
    try:
        out = subprocess.run(cmd, env=_env(setting), capture_output=True, text=True, check=True)
    finally:
        for p in spinners:  # only the processes this script started
            p.kill()
            p.wait()
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row.update(setting=setting, condition=condition, load_before=load_before, load_after=os.getloadavg()[0])
    return row


def summarize(rows: list[dict]) -> list[dict]:
    """Median seconds per (condition, setting) and the ratio to the best setting of its condition."""
    import statistics

    table = []
    for condition in CONDITIONS:
        cells = {}
        for setting in SETTINGS:
            got = [r for r in rows if r["condition"] == condition and r["setting"] == setting]
            if got:
                cells[setting] = (statistics.median(r["seconds"] for r in got), got)
        if not cells:
            continue
        best = min(s for s, _ in cells.values())
        for setting, (seconds, got) in cells.items():
            table.append(dict(condition=condition, setting=setting, seconds=seconds, ratio_to_best=seconds / best,
                              runs=len(got), load_before=[r["load_before"] for r in got],
                              load_after=[r["load_after"] for r in got], threads=got[0]["threads"]))
    return table


def write(rows, table, args) -> None:
    import torch

    meta = dict(when=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), machine=platform.machine(),
                cpus=os.cpu_count(), torch=torch.__version__, steps=args.steps, switch=args.switch,
                repeats=args.repeats, command=" ".join(["python", "benchmarks/bench_threads.py"] + sys.argv[1:]))
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(dict(meta=meta, rows=rows, table=table), indent=1) + "\n")
    lines = [f"Measured {meta['when']} on {meta['machine']}, {meta['cpus']} CPUs, torch {meta['torch']}: "
             f"`class` preset truncated to {args.steps} steps (switch at {args.switch}), {args.repeats} run(s) "
             f"per cell, median seconds. `{meta['command']}`.", "",
             "Ratio: to the fastest setting of the same condition in this run. Load: 1-minute load average "
             "before / after each run (the busy processes count in it). "
             + ("Settings of a condition ran back to back (--interleave)." if getattr(args, "interleave", False) else
                "Order: 1 and 2 threads in every condition first, then the variants, minutes apart: on a shared "
                "machine compare only rows with similar load."), "",
             "| condition | setting | torch threads | seconds | × best | load before | load after |",
             "|---|---|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r['condition']} | {r['setting']} | {r['threads']} | {r['seconds']:.1f} | "
                     f"{r['ratio_to_best']:.2f} | {', '.join(f'{x:.1f}' for x in r['load_before'])} | "
                     f"{', '.join(f'{x:.1f}' for x in r['load_after'])} |")
    (out / f"{args.name}.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--switch", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--conditions", default=",".join(CONDITIONS))
    parser.add_argument("--interleave", action="store_true", help="run all settings of a condition back to back")
    parser.add_argument("--name", default="threads", help="results file name in benchmarks/results (no suffix)")
    args = parser.parse_args()
    if args.child:
        child(args.steps, args.switch)
        return
    rows, settings = [], args.settings.split(",")
    # 1 and 2 threads in every condition first, the variants after: a run stopped early (the
    # machine may be shared) still has the main comparison.
    groups = [[s for s in settings if s in ("1", "2")], [s for s in settings if s not in ("1", "2")]]
    if args.interleave:  # every setting back to back in each condition: the fairest comparison on a shared machine
        groups = [settings]
    for _ in range(args.repeats):
        for group in groups:
            for condition in args.conditions.split(","):
                for setting in group:
                    rows.append(measure(setting, condition, args.steps, args.switch))
                    print(json.dumps(rows[-1]), flush=True)
                    write(rows, summarize(rows), args)  # after every row: a stopped run keeps its numbers


if __name__ == "__main__":
    main()
