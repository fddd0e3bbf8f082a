"""Gradient-covariance subspaces (first order only) and principal angles."""
import math

import pytest
import torch

from subspace_kit import HessianOperator, top_eigen
from subspace_kit.losses import mse
from subspace_kit.theory import CovarianceSubspace, covariance_basis, minibatch_gradients, principal_angles
from subspace_kit.theory._toy import one_thread

F64 = torch.float64


@pytest.fixture(autouse=True)
def _tiny_problems_run_on_one_thread():
    with one_thread():  # a thread pool only adds waiting on a busy 2-core machine
        yield


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _known_covariance(P=50, top=(10.0, 8.0, 6.0), seed=0):
    """A covariance with top-3 eigenvalues ``top`` and the rest 1, in a random basis."""
    Q = torch.linalg.qr(torch.randn(P, P, generator=_gen(seed), dtype=F64))[0]
    scales = torch.ones(P, dtype=F64)
    scales[: len(top)] = torch.tensor(top, dtype=F64)
    return Q, scales


def _samples(Q, scales, m, gen):
    return Q @ (scales.sqrt()[:, None] * torch.randn(len(scales), m, generator=gen, dtype=F64))


# ---------------------------------------------------------------------------- principal angles
def test_principal_angles_of_a_known_rotation():
    a = 0.3
    e = torch.eye(4, dtype=F64)
    U = e[:, :2]
    V = torch.stack([e[:, 0], math.cos(a) * e[:, 1] + math.sin(a) * e[:, 2]], dim=1)
    assert torch.allclose(principal_angles(U, V), torch.tensor([math.sin(a), 0.0], dtype=F64), atol=1e-15)


def test_principal_angles_ignore_the_choice_of_basis_and_are_sorted():
    gen = _gen(1)
    U = torch.randn(30, 4, generator=gen, dtype=F64)
    V = torch.randn(30, 4, generator=gen, dtype=F64)
    R = torch.randn(4, 4, generator=gen, dtype=F64)  # invertible: same span, not orthonormal
    s = principal_angles(U, V)
    assert torch.allclose(s, principal_angles(U @ R, V), atol=1e-12)
    assert torch.allclose(s, principal_angles(V, U), atol=1e-12)
    assert torch.all(s[:-1] >= s[1:])
    assert torch.allclose(principal_angles(U, U @ R), torch.zeros(4, dtype=F64), atol=1e-12)


def test_principal_angles_of_nested_and_orthogonal_spans():
    e = torch.eye(5, dtype=F64)
    assert torch.allclose(principal_angles(e[:, :3], e[:, 1:2]), torch.zeros(1, dtype=F64))
    assert torch.allclose(principal_angles(e[:, :2], e[:, 2:4]), torch.ones(2, dtype=F64))
    with pytest.raises(ValueError, match="same number of rows"):
        principal_angles(e[:, :2], torch.eye(4, dtype=F64)[:, :2])


# ---------------------------------------------------------------------------- estimators
def test_covariance_basis_is_the_exact_top_eigenspace_of_the_sample_second_moment():
    G = torch.randn(30, 50, generator=_gen(2), dtype=F64)
    basis, values = covariance_basis(G, 4)
    evals, evecs = torch.linalg.eigh(G @ G.T / 50)
    assert torch.allclose(values, evals.flip(0)[:4], rtol=1e-10)
    assert principal_angles(basis, evecs.flip(1)[:, :4]).max() < 1e-8
    assert torch.allclose(basis.T @ basis, torch.eye(4, dtype=F64), atol=1e-10)


def test_streaming_equals_one_shot_while_the_rank_holds_every_sample():
    G = torch.randn(40, 20, generator=_gen(3), dtype=F64)
    stream = CovarianceSubspace(3, oversample=17)
    for block in G.split(4, dim=1):
        stream.update(block)
    basis, values = covariance_basis(G, 3)
    assert stream.samples == 20
    assert torch.allclose(stream.values, values, rtol=1e-10)
    assert principal_angles(stream.basis, basis).max() < 1e-8


def test_streaming_recovers_the_top_eigenspace_of_a_known_covariance():
    Q, scales = _known_covariance()
    gen = _gen(4)
    stream = CovarianceSubspace(3)
    seen = []
    for _ in range(100):
        block = _samples(Q, scales, 20, gen)
        stream.update(block)
        seen.append(block)
    # 2000 samples: sampling error sin ≈ √(λ₃λ₄(P−3)/N)/(λ₃−λ₄) ≈ 0.08; truncation adds little.
    assert principal_angles(stream.basis, Q[:, :3]).max() < 0.2
    assert principal_angles(stream.basis, covariance_basis(torch.cat(seen, 1), 3)[0]).max() < 0.05
    assert torch.allclose(stream.values, scales[:3], rtol=0.25)


def test_centered_estimate_ignores_the_mean_gradient():
    Q, scales = _known_covariance(seed=5)
    mean = 20.0 * Q[:, -1:]  # a large mean along a low-variance direction
    gen = _gen(6)
    centered, raw = CovarianceSubspace(3, centered=True), CovarianceSubspace(3)
    for _ in range(100):
        block = _samples(Q, scales, 20, gen) + mean
        centered.update(block)
        raw.update(block)
    assert principal_angles(centered.basis, Q[:, :3]).max() < 0.2
    assert principal_angles(raw.basis, Q[:, -1:]).max() < 0.05  # second moment sees the mean first


def test_decay_follows_a_changing_covariance():
    Q, scales = _known_covariance(seed=7)
    gen = _gen(8)
    stream = CovarianceSubspace(3, decay=0.8)
    for _ in range(30):
        stream.update(_samples(Q, scales, 20, gen))
    Q2 = torch.linalg.qr(torch.randn(50, 50, generator=gen, dtype=F64))[0]
    for _ in range(60):
        stream.update(_samples(Q2, scales, 20, gen))
    assert principal_angles(stream.basis, Q2[:, :3]).max() < 0.3


# ---------------------------------------------------------------------------- on a model
def _least_squares_at_the_solution(n=2000, d=8, noise=0.5, seed=9):
    gen = _gen(seed)
    R = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=F64))[0]
    X = torch.randn(n, d, generator=gen, dtype=F64) * torch.tensor([3.0, 2.5, 2.0] + [1.0] * (d - 3), dtype=F64) @ R
    Y = X @ torch.randn(d, 1, generator=gen, dtype=F64) + noise * torch.randn(n, 1, generator=gen, dtype=F64)
    model = torch.nn.Linear(d, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.linalg.lstsq(X, Y).solution.T)
    return model, X, Y


def test_gradient_covariance_subspace_matches_the_hessian_subspace_for_least_squares():
    model, X, Y = _least_squares_at_the_solution()
    G = minibatch_gradients(model, mse, X, Y, batch_size=10, num_batches=400, seed=1)
    basis, _ = covariance_basis(G, 3)
    hess = top_eigen(HessianOperator(model, mse, X, Y), 3, method="dense").vectors
    assert principal_angles(basis, hess).max() < 0.2


def test_second_moment_is_2L_over_BC_times_the_hessian_for_least_squares_with_C_outputs():
    # Linear model with C = 3 outputs at its least-squares solution, residuals independent of
    # the inputs: E[g gᵀ] = 2L/(B·C)·H for minibatches of B samples (theory/covariance.py),
    # not 2L·H. Checked on 1500 minibatch gradients (sampling error about 10%).
    n, d, C, B = 3000, 6, 3, 10
    gen = _gen(11)
    X = torch.randn(n, d, generator=gen, dtype=F64) * torch.tensor([2.0, 1.5, 1.0, 1.0, 0.7, 0.5], dtype=F64)
    Y = X @ torch.randn(d, C, generator=gen, dtype=F64) + 0.3 * torch.randn(n, C, generator=gen, dtype=F64)
    model = torch.nn.Linear(d, C, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.linalg.lstsq(X, Y).solution.T)
    op = HessianOperator(model, mse, X, Y)
    L, _ = op.loss_and_gradient()
    H = op @ torch.eye(op.shape[0], dtype=F64)
    G = minibatch_gradients(model, mse, X, Y, batch_size=B, num_batches=1500, seed=2)
    M = G @ G.T / G.shape[1]
    predicted = 2 * L / (B * C) * H
    assert float(torch.linalg.norm(M - predicted) / torch.linalg.norm(predicted)) < 0.2
    scale = float((M * H).sum() / (H * H).sum())  # the best scalar c in M ≈ c·H
    assert scale == pytest.approx(2 * L / (B * C), rel=0.1)
    assert scale < 2 * L / 10  # "2L·H" is B·C = 30 times too large


def test_minibatch_gradients_are_reproducible_and_a_full_batch_is_the_gradient():
    model, X, Y = _least_squares_at_the_solution(n=50)
    with torch.no_grad():
        model.weight.add_(0.1)
    full = minibatch_gradients(model, mse, X, Y, batch_size=50, num_batches=1)
    _, g = HessianOperator(model, mse, X, Y).loss_and_gradient()
    assert torch.allclose(full[:, 0], g, rtol=1e-12)
    a = minibatch_gradients(model, mse, X, Y, batch_size=5, num_batches=3, seed=4)
    assert torch.equal(a, minibatch_gradients(model, mse, X, Y, batch_size=5, num_batches=3, seed=4))
    assert not torch.allclose(a[:, 0], a[:, 1])


def test_bad_arguments_raise_value_errors_naming_them():
    with pytest.raises(ValueError, match="k"):
        CovarianceSubspace(0)
    with pytest.raises(ValueError, match="decay"):
        CovarianceSubspace(2, decay=1.0)
    with pytest.raises(ValueError, match="at least 2"):
        CovarianceSubspace(2, centered=True).update(torch.ones(5, 1))
    with pytest.raises(ValueError, match="m >= k"):
        covariance_basis(torch.ones(5, 2), 3)
    model, X, Y = _least_squares_at_the_solution(n=20)
    with pytest.raises(ValueError, match="batch_size"):
        minibatch_gradients(model, mse, X, Y, batch_size=21, num_batches=1)
