"""Shared pieces of the engine tests (no tests of its own).

A tiny data set (96 points in 3 Gaussian blobs, 6 features) and a tiny tanh MLP (6-5-5-3,
83 parameters) are registered under their own names, so a whole run of the real engine (data
loading, model building, Hessian tracking, store) takes a fraction of a second and the suite
stays fast on a shared 2-core machine. ``register()`` does the same in a subprocess.

Tiny models run on one thread: on a busy 2-core machine PyTorch's second intra-op thread turns
each small kernel into a wait for a time slice (measured: 1.2 s vs 83 s for the same run).
"""
from __future__ import annotations

import math

import pytest
import torch

from subspace_kit.datasets import LOADERS, from_tensors
from subspace_kit.experiment import RunConfig
from subspace_kit.models import MODELS, PaperMLP

TINY_DATA = "tiny-blobs"
TINY_MODEL = "tiny-mlp"
TINY_PARAMS = 83


def tiny_loader(root=None, **kwargs):
    gen = torch.Generator().manual_seed(0)
    n, dim, classes = 96, 6, 3
    centers = 1.5 * torch.randn(classes, dim, generator=gen)
    labels = torch.arange(n) % classes
    X = centers[labels] + torch.randn(n, dim, generator=gen)
    return from_tensors(X, labels, name=TINY_DATA)


class TinyMLP(PaperMLP):
    def __init__(self, *, input_shape, num_classes):
        super().__init__(input_shape=input_shape, num_classes=num_classes, width=5)


def register() -> None:
    """Make the tiny data set and model known to the engine, on one thread (for subprocesses)."""
    LOADERS[TINY_DATA] = tiny_loader
    MODELS[TINY_MODEL] = TinyMLP
    torch.set_num_threads(1)


@pytest.fixture
def tiny(monkeypatch):
    """The tiny data set and model, registered (and one thread) for the duration of one test."""
    monkeypatch.setitem(LOADERS, TINY_DATA, tiny_loader)
    monkeypatch.setitem(MODELS, TINY_MODEL, TinyMLP)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TINY_SETTINGS = dict(dataset=TINY_DATA, model=TINY_MODEL, n_train=96, hessian_samples=None, batch_size=16,
                     k=2, lr=0.05, steps=24, switch="step", switch_step=12, switch_check_every=4,
                     refresh_every=2, log_every=2, checkpoint_every=8)


def tiny_config(**overrides) -> RunConfig:
    """The ``smoke`` preset shrunk to the tiny problem (needs the ``tiny`` fixture or ``register``)."""
    return RunConfig.preset("smoke", **{**TINY_SETTINGS, **overrides})


def same_value(a, b) -> bool:
    """Equal, with NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def assert_same_rows(rows_a, rows_b, *, ignore=("wall",)) -> None:
    """Two lists of metric rows hold the same numbers (NaN == NaN), ignoring ``ignore`` columns."""
    assert len(rows_a) == len(rows_b)
    for a, b in zip(rows_a, rows_b):
        keys = (set(a) | set(b)) - set(ignore)
        diff = {k: (a.get(k), b.get(k)) for k in keys if not same_value(a.get(k), b.get(k))}
        assert not diff, f"rows differ at step {a.get('step')} ({a.get('phase')}, {a.get('mode')}): {diff}"
