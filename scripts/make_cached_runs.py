"""Regenerate the cached runs that notebooks 05–12 read from ``data/runs/``.

    python scripts/make_cached_runs.py            # every run of subspace_kit.cached.CACHED
    python scripts/make_cached_runs.py eos sam    # only these
    python scripts/make_cached_runs.py --list     # names, store keys and whether each is there

The configs are ``subspace_kit.cached.CACHED`` (one list, shared with the notebooks). A run
already finished in the store is kept; delete its folder to recompute it. Runs execute one after
the other on one thread (a few minutes each on a 2-core laptop); checkpoints are removed at the end,
so the store holds only ``config.json``, ``metrics.csv`` and ``summary.json``.
"""
from __future__ import annotations

import argparse
import sys
import warnings

from subspace_kit.cached import CACHED, SHIPPED, compute_cached, find


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"runs to make (default: all of {', '.join(CACHED)})")
    parser.add_argument("--store", default=str(SHIPPED), help="run store (default: data/runs of this checkout)")
    parser.add_argument("--list", action="store_true", help="list the runs and whether each is in the store")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in CACHED]
    if unknown:
        parser.error(f"unknown run {unknown[0]!r}; known: {', '.join(CACHED)}")
    names = args.names or list(CACHED)
    if args.list:
        for name in names:
            found = find(CACHED[name], [args.store])
            print(f"{name:20s} {CACHED[name].key()}  {'stored' if found else 'missing'}")
        return 0
    warnings.filterwarnings("ignore", category=UserWarning)
    for name in names:
        print(f"{name}: {CACHED[name].key()} ...", flush=True)
        result, seconds = compute_cached(name, store=args.store)
        last = result.summary.get("final_train_loss", {})
        print(f"{name}: {result.status} in {seconds:.0f} s (engine wall {result.summary.get('wall_seconds')} s); "
              f"final losses {last}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
