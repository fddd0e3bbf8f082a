"""Add ``rows`` and ``metrics_sha256`` to the summaries of ended runs stored before the run
store recorded them, so later damage to their ``metrics.csv`` is detected.

    python scripts/seal_runs.py [STORE]     (default: the shipped store, data/runs)

Only ``summary.json`` files change; damaged runs are reported and left alone (exit status 1).
Same as ``python -m subspace_kit check --seal --out STORE``.
"""
import sys

from subspace_kit.cli import main
from subspace_kit.paths import shipped_runs

if __name__ == "__main__":
    store = sys.argv[1] if len(sys.argv) > 1 else str(shipped_runs())
    sys.exit(main(["check", "--seal", "--out", store]))
