"""How many CPU threads torch may use while the kit trains: one policy, in one place.

Policy: **one thread**, unless ``$SUBSPACE_KIT_THREADS`` says otherwise (a positive integer, or
``auto``). Why (``benchmarks/results/threads.md``, ``benchmarks/bench_threads.py``): on a busy
machine torch's OpenMP threads spin against other processes and a run slows far more than fair
sharing predicts (an 800-step class run: 2 threads 5.0x slower beside two busy processes,
1 thread 1.6x; pinned to one CPU, 2 threads fight over it), while on a quiet 2-core machine a
second thread saves at most about a quarter of the time. One thread is never far from the best
setting in any of these conditions; two threads are far from it in two of them. One thread also
makes a run's numbers independent of the machine's load: a policy that picked the count from
the load would make the same config give different rows on different days (1 and 2 threads
round differently).

``SUBSPACE_KIT_THREADS=auto`` (opt-in, for a machine you have to yourself): at the start of the
run, as many threads as CPUs this process may use minus the 1-minute load average, at least 1.
``engine_threads()`` is the context in which the experiment engine runs.
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
