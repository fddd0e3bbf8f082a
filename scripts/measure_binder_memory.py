#!/usr/bin/env python3
"""Resident memory of what a Binder user runs at once: the dashboard under Voila plus one open
notebook kernel that has run notebook 01. Binder's limit is 2 GB per user.

    OMP_NUM_THREADS=1 python scripts/measure_binder_memory.py

Starts a Jupyter server (Binder's single-user server: JupyterLab and Voila as its extensions),
opens /voila/render/notebooks/dashboard.ipynb in headless Chromium and waits for its curves,
then runs notebook 01 with nbclient in a second kernel that stays open, and sums, over the
server, its kernels and the notebook kernel: RSS (counts shared libraries once per process, an
upper bound) and PSS (shares them out: what the container is charged, near enough). The browser
is not counted: on Binder it runs on the user's machine. Runs and data go to a temporary
SUBSPACE_KIT_HOME; one thread, as binder/start sets.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from browser_helpers import BIN, LOSS_POINTS_JS, chromium_page, free_port, server  # noqa: E402

MIB = 1 << 20


def memory(pids: dict[str, int]) -> dict[str, dict]:
    """``{label: {"rss": MiB, "pss": MiB}}`` of each process and its children, and the total."""
    table, total = {}, {"rss": 0.0, "pss": 0.0}
    for label, pid in pids.items():
        proc = psutil.Process(pid)
        for i, p in enumerate([proc] + proc.children(recursive=True)):
            info = p.memory_full_info()
            row = {"rss": info.rss / MIB, "pss": info.pss / MIB, "cmd": " ".join(p.cmdline()[:3])[-80:]}
            table[f"{label}#{i}"] = row
            total["rss"] += row["rss"]
            total["pss"] += row["pss"]
    table["total"] = total
    return table


def run_notebook_01(env: dict):
    """A kernel that has executed notebook 01 (default parameters) and stays open."""
    import nbformat
    from jupyter_client import KernelManager
    from nbclient import NotebookClient

    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(REPO / "notebooks"), env=env)
    nb = nbformat.read(REPO / "notebooks" / "01_welcome.ipynb", as_version=4)
    NotebookClient(nb, km=km, timeout=900).execute()
    return km


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="subspace_kit_mem_"))
    threads = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "SUBSPACE_KIT_THREADS")}
    env = {**os.environ, **threads, "SUBSPACE_KIT_HOME": str(home)}
    port = free_port()
    cmd = [str(BIN / "jupyter"), "server", "--no-browser", f"--port={port}", "--ServerApp.token=",
           "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True", f"--ServerApp.root_dir={REPO}",
           "--allow-root"]
    with server(cmd, f"http://127.0.0.1:{port}/api/status", cwd=REPO, env={**threads, "SUBSPACE_KIT_HOME": str(home)},
                log=home / "server.log", timeout=180) as srv, chromium_page() as page:
        start = time.perf_counter()
        page.goto(f"http://127.0.0.1:{port}/voila/render/notebooks/dashboard.ipynb")
        page.wait_for_selector(".js-plotly-plot", timeout=600_000)
        curves, deadline = 0, time.monotonic() + 120  # the shipped class run's curves, if shown at open
        while not curves and time.monotonic() < deadline:
            curves = sum(page.evaluate(LOSS_POINTS_JS).values())
            time.sleep(2)
        dashboard_s = time.perf_counter() - start
        dashboard_only = memory({"server": srv.pid})
        km = run_notebook_01(env)
        try:
            both = memory({"server": srv.pid, "notebook01": km.provisioner.process.pid})
        finally:
            km.shutdown_kernel(now=True)
    print(json.dumps({"dashboard_seconds": round(dashboard_s, 1), "dashboard_curve_points": curves,
                      "dashboard_only": dashboard_only, "dashboard_plus_notebook01": both}, indent=1))
    total = both["total"]
    print(f"dashboard + notebook 01: PSS {total['pss']:.0f} MiB, RSS sum {total['rss']:.0f} MiB "
          f"(dashboard alone: PSS {dashboard_only['total']['pss']:.0f} MiB)")
    return 0 if total["pss"] < 2048 else 1


if __name__ == "__main__":
    sys.exit(main())
