"""Time every notebook's default run (papermill, default parameters) from an empty run store.

    python scripts/time_notebooks.py                 # all of notebooks/*.ipynb
    python scripts/time_notebooks.py 01_welcome 04   # those whose names start so

Prints a Markdown table: seconds, whether it ran clean, the 1-minute load average before and after
(the machine's load changes the seconds; say it beside them), and how many runs it had to compute
into the (temporary) user store. One torch thread per kernel, as the kit's policy.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import papermill

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def time_one(path: Path, out: Path, store: Path) -> tuple[float, str]:
    start = time.perf_counter()
    try:
        papermill.execute_notebook(str(path), str(out), cwd=str(NOTEBOOKS), progress_bar=False, kernel_name="python3")
        status = "ok"
    except Exception as exc:  # a failing notebook is a row of the table, not the end of the timing
        status = f"failed: {type(exc).__name__}"
    return time.perf_counter() - start, status


def main(argv: list[str]) -> int:
    paths = sorted(p for p in NOTEBOOKS.glob("*.ipynb") if not argv or any(p.stem.startswith(a) for a in argv))
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(OMP_NUM_THREADS="1", SUBSPACE_KIT_THREADS="1")
        print("| notebook | seconds | status | load before / after | runs computed |")
        print("|---|---|---|---|---|")
        for path in paths:
            store = Path(tmp) / path.stem
            os.environ["SUBSPACE_KIT_RUNS"] = str(store)  # the kernel inherits it: an empty user store
            before = os.getloadavg()[0]
            seconds, status = time_one(path, Path(tmp) / f"{path.stem}.out.ipynb", store)
            computed = len([p for p in store.glob("*/config.json")]) if store.exists() else 0
            print(f"| `{path.stem}` | {seconds:.0f} | {status} | {before:.1f} / {os.getloadavg()[0]:.1f} | {computed} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
