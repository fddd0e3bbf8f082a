"""Stochastic Lanczos quadrature against dense spectra."""
import numpy as np
import pytest
import torch

from subspace_kit import HessianOperator
from subspace_kit.losses import mse
from subspace_kit.theory import spectral_density
from subspace_kit.theory._toy import one_thread

F64 = torch.float64


@pytest.fixture(autouse=True)
def _tiny_problems_run_on_one_thread():
    with one_thread():
        yield


def _symmetric_with_spectrum(eigenvalues, seed=0):
    gen = torch.Generator().manual_seed(seed)
    Q = torch.linalg.qr(torch.randn(len(eigenvalues), len(eigenvalues), generator=gen, dtype=F64))[0]
    return Q @ torch.diag(eigenvalues) @ Q.T


def _bulk_and_outliers(P=200, seed=0):
    gen = torch.Generator().manual_seed(seed)
    bulk = 2 * torch.rand(P - 5, generator=gen, dtype=F64) - 1
    return torch.cat([bulk, torch.tensor([5.0, 6.0, 7.0, 8.0, 10.0], dtype=F64)])


def _sampling_tolerance(P, probes):
    # Per probe Var F̂(x) ≈ 2F(1−F)/P ≤ 1/(2P); 5 standard errors of the probe mean.
    return 5 * np.sqrt(0.5 / (P * probes))


def test_density_integrates_to_one():
    sd = spectral_density(_symmetric_with_spectrum(_bulk_and_outliers()), num_probes=5, lanczos_steps=40)
    assert np.trapezoid(sd.density, sd.grid) == pytest.approx(1.0, abs=1e-6)
    assert np.allclose(sd.weights.sum(axis=1), 1.0)


def test_full_lanczos_cdf_matches_the_dense_spectrum_within_sampling_error():
    eigenvalues = _bulk_and_outliers()
    P, probes = len(eigenvalues), 10
    sd = spectral_density(_symmetric_with_spectrum(eigenvalues), num_probes=probes, lanczos_steps=P)
    x = np.linspace(-1.5, 10.5, 1000)
    exact = (eigenvalues.numpy()[None, :] <= x[:, None]).mean(axis=1)
    assert np.abs(sd.cdf(x) - exact).max() < _sampling_tolerance(P, probes)


def test_short_lanczos_density_matches_the_broadened_dense_histogram():
    eigenvalues = _bulk_and_outliers().numpy()
    sd = spectral_density(_symmetric_with_spectrum(torch.from_numpy(eigenvalues)), num_probes=10, lanczos_steps=40)
    kernel = np.exp(-0.5 * ((sd.grid[:, None] - eigenvalues[None, :]) / sd.sigma) ** 2)
    dense = kernel.sum(axis=1) / (len(eigenvalues) * sd.sigma * np.sqrt(2 * np.pi))
    assert np.trapezoid(np.abs(sd.density - dense), sd.grid) < 0.1  # L1 distance of two densities
    assert sd.nodes.max() == pytest.approx(10.0, rel=1e-8)  # Lanczos finds the extremes exactly
    assert sd.matvecs == 10 * 40


def test_spectrum_of_a_small_network_hessian():
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    X = torch.randn(40, 6, generator=gen, dtype=F64)
    Y = torch.nn.functional.one_hot(torch.randint(0, 3, (40,), generator=gen), 3).to(F64)
    H = HessianOperator(net, mse, X, Y)
    P = H.shape[0]
    eigenvalues = np.linalg.eigvalsh((H @ torch.eye(P, dtype=F64)).numpy())
    probes = 20
    sd = spectral_density(H, num_probes=probes, lanczos_steps=P)
    x = np.linspace(eigenvalues.min() - 1, eigenvalues.max() + 1, 2000)
    exact = (eigenvalues[None, :] <= x[:, None]).mean(axis=1)
    assert np.abs(sd.cdf(x) - exact).max() < _sampling_tolerance(P, probes)
    assert sd.nodes.max() == pytest.approx(eigenvalues.max(), rel=1e-8)
    assert sd.nodes.min() == pytest.approx(eigenvalues.min(), rel=1e-6)  # negative curvature too


def test_same_seed_same_estimate():
    A = _symmetric_with_spectrum(_bulk_and_outliers(P=60))
    a, b = spectral_density(A, num_probes=3, lanczos_steps=10), spectral_density(A, num_probes=3, lanczos_steps=10)
    assert np.array_equal(a.density, b.density)
    assert not np.array_equal(a.nodes, spectral_density(A, num_probes=3, lanczos_steps=10, seed=1).nodes)


def test_bad_arguments_raise_value_errors_naming_them():
    A = torch.eye(5, dtype=F64)
    with pytest.raises(ValueError, match="num_probes"):
        spectral_density(A, num_probes=0)
    with pytest.raises(ValueError, match="sigma"):
        spectral_density(A, sigma=-1.0)
    with pytest.raises(ValueError, match="square"):
        spectral_density(torch.ones(3, 4, dtype=F64))


def _diagonal_operator():
    # Identity eigenvectors: every Rademacher probe has (vᵀu_i)² = 1/P exactly, so each probe's
    # spectral measure *is* the exact spectrum and the checks below need no sampling tolerance.
    eigenvalues = _bulk_and_outliers()
    return torch.diag(eigenvalues), eigenvalues.numpy()


def test_short_lanczos_cdf_is_biased_not_exact_in_expectation():
    A, eigenvalues = _diagonal_operator()
    x = np.linspace(-1.5, 10.5, 500)
    exact = (eigenvalues[None, :] <= x[:, None]).mean(axis=1)
    short = spectral_density(A, num_probes=4, lanczos_steps=8)
    full = spectral_density(A, num_probes=4, lanczos_steps=len(eigenvalues))
    assert np.abs(short.cdf(x) - exact).max() > 0.05  # 8 nodes cannot follow a step function
    assert np.abs(full.cdf(x) - exact).max() < 1e-8  # m = P: the quadrature is exact


@pytest.mark.parametrize("steps", [4, 8, 20])
def test_cdf_bounds_bracket_the_exact_cdf(steps):
    A, eigenvalues = _diagonal_operator()
    x = np.linspace(-1.5, 10.5, 2000)
    exact = (eigenvalues[None, :] <= x[:, None]).mean(axis=1)
    sd = spectral_density(A, num_probes=3, lanczos_steps=steps)
    lower, upper = sd.cdf_bounds(x)
    assert (lower <= exact + 1e-9).all() and (exact <= upper + 1e-9).all()
    assert (lower <= sd.cdf(x) + 1e-12).all() and (sd.cdf(x) <= upper + 1e-12).all()
