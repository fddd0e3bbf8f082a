"""How many CPU threads torch may use while the kit trains: one policy, in one place.

On a busy machine torch's OpenMP threads spin against other processes and a run slows far more
than fair sharing predicts (measured 5-20x on 2 cores). ``engine_threads()`` is the context in
which the experiment engine runs; ``SUBSPACE_KIT_THREADS`` overrides the policy.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

import torch

THREADS_ENV = "SUBSPACE_KIT_THREADS"


def policy_threads() -> int:
    """Threads for the engine: ``$SUBSPACE_KIT_THREADS`` if set, else 1."""
    value = os.environ.get(THREADS_ENV)
    if value is None:
        return 1
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"{THREADS_ENV} must be a positive integer, got {value!r}") from None
    if n < 1:
        raise ValueError(f"{THREADS_ENV} must be a positive integer, got {value!r}")
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
