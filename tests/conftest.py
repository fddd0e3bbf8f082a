"""Fixtures for the curvature-core tests: tiny float64 models, data, dense references.

Factories, not values, so each test states the model, loss and size it checks.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call


@pytest.fixture(autouse=True, scope="session")
def _private_run_store(tmp_path_factory):
    """Tests never write into the user's run store: every run (kernels and subprocesses too,
    which inherit the environment) goes to a throw-away folder unless a test names its own."""
    import os

    old = os.environ.get("SUBSPACE_KIT_RUNS")
    os.environ["SUBSPACE_KIT_RUNS"] = str(tmp_path_factory.mktemp("user_runs"))
    yield
    if old is None:
        os.environ.pop("SUBSPACE_KIT_RUNS", None)
    else:
        os.environ["SUBSPACE_KIT_RUNS"] = old


class TwoActivationMLP(nn.Sequential):
    """5-6-4-3 with tanh then softplus: both activations have non-zero second derivatives."""

    def __init__(self, width: int = 6):
        super().__init__(nn.Linear(5, width), nn.Tanh(), nn.Linear(width, 4), nn.Softplus(), nn.Linear(4, 3))


class TinyConvNet(nn.Module):
    """Conv2d(1→2, 3×3) + tanh + linear on 1×6×6 images: the Hessian couples conv and linear weights."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.head = nn.Linear(2 * 4 * 4, 3)

    def forward(self, x):
        return self.head(torch.tanh(self.conv(x)).flatten(1))


class BatchNormMLP(nn.Sequential):
    """A BatchNorm layer whose running statistics must survive ``H @ v`` untouched."""

    def __init__(self):
        super().__init__(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 3))


MODELS = {"mlp": (TwoActivationMLP, (5,)), "conv": (TinyConvNet, (1, 6, 6)), "batchnorm": (BatchNormMLP, (5,))}


def _make_problem(model: str = "mlp", *, n: int = 12, seed: int = 0, dtype=torch.float64, **kwargs):
    """``(model, X, Y)``: a freshly seeded model and ``n`` random samples with one-hot targets."""
    cls, input_shape = MODELS[model]
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = cls(**kwargs).to(dtype)
    X = torch.randn(n, *input_shape, generator=gen, dtype=dtype)
    labels = torch.randint(3, (n,), generator=gen)
    Y = torch.nn.functional.one_hot(labels, 3).to(dtype)
    return net, X, Y


def _dense_hessian(model: nn.Module, loss_fn, X, Y) -> torch.Tensor:
    """The (P, P) Hessian of the mean loss by ``torch.func.hessian`` over flattened parameters."""
    names = [name for name, p in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss_of(flat):
        # Buffers cloned inside the transform: train-mode BatchNorm may update the clones.
        buffers = {name: b.clone() for name, b in model.named_buffers()}
        params, i = {}, 0
        for name, shape in zip(names, shapes):
            size = shape.numel()
            params[name] = flat[i : i + size].view(shape)
            i += size
        return loss_fn(functional_call(model, {**params, **buffers}, (X,)), Y)

    return torch.func.hessian(loss_of)(theta)


def _symmetric_matrix(eigenvalues, *, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    """``Q diag(eigenvalues) Qᵀ`` with a random orthogonal ``Q``: a known spectrum."""
    eigenvalues = torch.as_tensor(eigenvalues, dtype=dtype)
    gen = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(len(eigenvalues), len(eigenvalues), generator=gen, dtype=torch.float64))
    Q = Q.to(dtype)
    return (Q * eigenvalues) @ Q.T


@pytest.fixture
def make_problem():
    return _make_problem


@pytest.fixture
def dense_hessian():
    return _dense_hessian


@pytest.fixture
def symmetric_matrix():
    return _symmetric_matrix


@pytest.fixture
def sin_largest_angle():
    """sin of the largest principal angle between the column spans of two orthonormal blocks,
    as ‖(I − V Vᵀ) U‖₂ (accurate for tiny angles, unlike sqrt(1 − cos²))."""

    def sin(U: torch.Tensor, V: torch.Tensor) -> float:
        U, V = U.double(), V.double()
        return float(torch.linalg.matrix_norm(U - V @ (V.T @ U), ord=2))

    return sin


@pytest.fixture(scope="module")
def class_run():
    """The shipped run of the ``class`` preset, as stored (skips when this copy lacks it)."""
    from subspace_kit.experiment.shipped import stored_shipped

    result = stored_shipped("class")
    if result is None:
        pytest.skip("the shipped class run is not in this checkout")
    return result
