"""Regenerate the shipped runs (and their switch points) in ``data/runs/``.

    python scripts/make_cached_runs.py                  # every run named in data/runs/index.json
    python scripts/make_cached_runs.py eos sam          # only these
    python scripts/make_cached_runs.py --list           # names, store keys, whether each is there
    python scripts/make_cached_runs.py --switch-points  # the switch points the index ships

The configs are ``data/runs/index.json`` (read by ``subspace_kit.experiment.shipped``, shared
with the notebooks). A run already finished in the store is kept; delete its folder to recompute
it. Runs sharing a phase 1 compute it once (the first saves a switch point, the others start
there); at the end only the switch points the index names stay in the store. Runs execute one
after the other, on the engine's thread policy (``SUBSPACE_KIT_THREADS``, default 1).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

from subspace_kit.experiment.run_files import as_store
from subspace_kit.experiment.runner import run
from subspace_kit.experiment.shipped import compute_shipped, find, index, names, shipped_config
from subspace_kit.experiment.switch_point import FOLDER, switch_point_path
from subspace_kit.paths import shipped_runs
from subspace_kit.threads import policy_threads


def shipped_switch_points(store) -> set[Path]:
    """Paths (in ``store``) of the switch points the index ships."""
    return {switch_point_path(store, shipped_config(n), policy_threads()) for n in index()["switch_points"]}


def prune_switch_points(store) -> None:
    """Remove the switch points of ``store`` that the index does not ship (they are large)."""
    keep = shipped_switch_points(store)
    for path in sorted((Path(store) / FOLDER).glob("*.npz")):
        if path not in keep:
            path.unlink()


def make_switch_points(store) -> None:
    """Compute each shipped switch point (phase 1 plus one step) and put it into ``store``."""
    for name in index()["switch_points"]:
        cfg = shipped_config(name)
        target = switch_point_path(store, cfg, policy_threads())
        if target.exists():
            print(f"{name}: switch point {target.name} already there", flush=True)
            continue
        short = cfg.replace(steps=cfg.switch_step + 1) if cfg.switch == "step" else cfg
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            run(short, store=tmp)
            made = switch_point_path(tmp, cfg, policy_threads())
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(made, target)
        print(f"{name}: switch point {target.name} ({target.stat().st_size / 1e6:.1f} MB) in "
              f"{time.perf_counter() - start:.0f} s", flush=True)


def main(argv=None) -> int:
    known = names()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"runs to make (default: all of {', '.join(known)})")
    parser.add_argument("--store", default=str(shipped_runs()), help="run store (default: data/runs of this checkout)")
    parser.add_argument("--list", action="store_true", help="list the runs and whether each is in the store")
    parser.add_argument("--switch-points", action="store_true", help="make the switch points the index ships")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in known]
    if unknown:
        parser.error(f"unknown run {unknown[0]!r}; known: {', '.join(known)}")
    selected = args.names or [n for n in known if index()["runs"][n].get("regenerate", True)]
    if args.list:
        for name in selected:
            found = find(shipped_config(name), [args.store])
            print(f"{name:20s} {shipped_config(name).key()}  {'stored' if found else 'missing'}")
        return 0
    warnings.filterwarnings("ignore", category=UserWarning)
    if args.switch_points:
        make_switch_points(args.store)
        return 0
    for name in selected:
        print(f"{name}: {shipped_config(name).key()} ...", flush=True)
        result, seconds = compute_shipped(name, store=as_store(args.store))
        last = result.summary.get("final_train_loss", {})
        print(f"{name}: {result.status} in {seconds:.0f} s (engine wall {result.summary.get('wall_seconds')} s); "
              f"final losses {last}", flush=True)
    prune_switch_points(args.store)
    return 0


if __name__ == "__main__":
    sys.exit(main())
