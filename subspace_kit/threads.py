"""How many CPU threads torch may use while the kit trains: one policy, in one place.

Policy: **one thread**, unless ``$SUBSPACE_KIT_THREADS`` says otherwise (a positive integer, or
``auto``). Evidence (``benchmarks/bench_threads.py``; ``benchmarks/results/threads.md``,
``threads_passive.md`` and ``threads_quiet.md``, a 200-step class run on a 2-core machine shared
with other jobs, load average 1.3-13, so compare rows measured back to back):

- torch's default OpenMP threads *spin* while they wait. With a single other job on the
  machine (load 1.3-3.6) two threads took a median 197 s where one took 13.4 s (14.7x); at load
  13, 592 s vs 109 s; beside two busy processes 697 s vs 106 s: the cliff of issue 13. Pinned
  to one CPU (``taskset -c 0``): 23.6 s vs 20.2 s.
- One thread is never far from the best setting measured: 1.00-1.02x of two threads with
  ``OMP_WAIT_POLICY=PASSIVE`` alone and on one CPU, 1.24x beside two busy processes.
- Two threads with ``OMP_WAIT_POLICY=PASSIVE`` (waiting threads sleep) showed no cliff and were
  the best or within 2 % everywhere. But that variable only acts if it is in the environment
  before torch is loaded, which a library imported after ``import torch`` cannot arrange, so it
  belongs in the environment a deployment controls (Binder's start script, ``make``):
  ``OMP_WAIT_POLICY=PASSIVE SUBSPACE_KIT_THREADS=2``. Not measured here on a quiet machine,
  where issue 13 saw 2 (spinning) threads 1.37x faster than one.
- One thread also keeps a run's numbers independent of the machine: 1 and 2 threads round
  differently, so a load-dependent count would give the same config different rows.

``SUBSPACE_KIT_THREADS=auto`` (opt-in): at the start of the run, as many threads as CPUs this
process may use minus the 1-minute load average, at least 1 (it can still meet the cliff if the
machine gets busy later, unless ``OMP_WAIT_POLICY=PASSIVE`` is set). ``engine_threads()`` is
the context in which the experiment engine runs.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

import torch

THREADS_ENV = "SUBSPACE_KIT_THREADS"


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. 1 under ``taskset -c 0``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def idle_cpus() -> int:
    """Usable CPUs not taken by the 1-minute load average (at least 1)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    return max(1, int(usable_cpus() - load + 0.5))


def policy_threads() -> int:
    """Threads for the engine: ``$SUBSPACE_KIT_THREADS`` (a positive integer or ``auto``), else 1."""
    value = os.environ.get(THREADS_ENV)
    if value is None:
        return 1
    if value.strip().lower() == "auto":
        return idle_cpus()
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"{THREADS_ENV} must be a positive integer or 'auto', got {value!r}") from None
    if n < 1:
        raise ValueError(f"{THREADS_ENV} must be a positive integer or 'auto', got {value!r}")
    return n


@contextmanager
def engine_threads():
    """Run the body with ``policy_threads()`` torch threads, restoring the caller's count after."""
    before = torch.get_num_threads()
    torch.set_num_threads(policy_threads())
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
