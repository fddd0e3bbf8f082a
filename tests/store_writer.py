"""A stand-in for the runner in another process (no tests here): writes one run through the
store's API exactly as the runner does once wired (lock, load, discard, write rows, summary).

``python store_writer.py ROOT hold``: take the lock, print ``locked``, sleep until killed.
``python store_writer.py ROOT write N DELAY``: as the only writer, answer a completed run from
the store (print ``served``) or write N rows, DELAY seconds apart, and complete (``wrote``).
"""
import sys
import time

from subspace_kit.experiment import RunConfig, RunStore

COLUMNS = ["step", "phase", "mode", "writer"]
CONFIG = RunConfig.preset("smoke")


def main(root: str, action: str, n: int = 0, delay: float = 0.0) -> None:
    import os

    store = RunStore(root)
    with store.lock(CONFIG) as run:
        if action == "hold":
            print("locked", flush=True)
            time.sleep(600)
            return
        existing = run.load()
        if existing is not None and existing.status == "completed":
            print("served", len(existing.rows), flush=True)
            return
        run.discard()
        run.write_config()
        run.write_summary({"status": "running", "config_key": CONFIG.key()})
        writer = run.metrics_writer(COLUMNS)
        for step in range(n):
            writer.write({"step": step, "phase": "warmup", "mode": "none", "writer": os.getpid()})
            time.sleep(delay)
        writer.close()
        run.write_summary({"status": "completed", "config_key": CONFIG.key()})
        print("wrote", n, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(sys.argv[3]), float(sys.argv[4])) if len(sys.argv) > 3 else ())
