"""The whole eigenvalue spectrum at once: stochastic Lanczos quadrature (as in PyHessian).

For a unit probe v, m Lanczos steps give a tridiagonal T = S diag(θ) Sᵀ whose Ritz values θ_j
with weights w_j = S[0, j]² are the Gauss quadrature of the spectral measure
``Σ_i (vᵀu_i)² δ(λ − λ_i)``; averaged over random probes, that measure is the spectral
density ``(1/P) Σ_i δ(λ − λ_i)`` (for Rademacher probes E (vᵀu_i)² = 1/P).

What is exact and what is not: the quadrature integrates polynomials of degree ≤ 2m − 1
exactly, but a cdf is a step function, so with m < P steps ``cdf`` is *biased* (on a test
spectrum, 8 steps give cdf(−0.5) = 0.150 where the exact value is 0.255); it becomes exact in
expectation only when m reaches the number of distinct eigenvalues (m = P always does). What
holds for every m is the Chebyshev-Markov-Stieltjes bracket: the probe's exact cdf lies between
the quadrature cdf minus the weight of the largest node ≤ x and plus the weight of the smallest
node > x; ``cdf_bounds`` returns that bracket averaged over probes (which brackets the
probe-averaged cdf, itself an unbiased estimate of the true one). ``spectral_density`` returns
the quadrature (``nodes``, ``weights``, ``cdf``, ``cdf_bounds``) and a Gaussian-broadened
density on a grid for plotting. Works for any symmetric operator with ``@`` and ``.shape``: a
``HessianOperator``, a Gauss-Newton operator, a dense tensor.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal

from .._validation import check_int_range, check_positive
from ..eigen import lanczos_tridiagonal
from ..operators import operator_dtype_device, operator_size


@dataclass(frozen=True)
class SpectralDensity:
    """A stochastic Lanczos quadrature estimate of an operator's eigenvalue density.

    grid : (num_points,) eigenvalue axis.  density : (num_points,) Gaussian-broadened density
    on it (integrates to 1 up to the tails cut off 5σ beyond the extreme nodes).
    nodes, weights : (num_probes, m) Ritz values and their quadrature weights per probe (each
    row of weights sums to 1; unused entries of an early-stopped probe have weight 0).
    sigma : the broadening width.  matvecs : operator products spent.
    """

    grid: np.ndarray
    density: np.ndarray
    nodes: np.ndarray
    weights: np.ndarray
    sigma: float
    matvecs: int

    def cdf(self, x) -> np.ndarray:
        """Quadrature estimate of the fraction of eigenvalues ``<= x`` (unbroadened), any shape
        of x. Biased when ``m`` is below the number of distinct eigenvalues: see ``cdf_bounds``."""
        x = np.asarray(x, dtype=np.float64)
        below = self.nodes[None, ...] <= x.reshape(-1, 1, 1)
        return ((below * self.weights[None, ...]).sum(axis=2).mean(axis=1)).reshape(x.shape)

    def cdf_bounds(self, x) -> tuple[np.ndarray, np.ndarray]:
        """``(lower, upper)``, each shaped like x: the Chebyshev-Markov-Stieltjes bracket of the
        probes' exact spectral cdfs at x, averaged over probes. Per probe, lower = quadrature
        cdf minus the weight of the largest node ≤ x, upper = plus the weight of the smallest
        node > x; the bracket is narrow where the nodes are dense."""
        x = np.asarray(x, dtype=np.float64)
        nodes, w = self.nodes[None, ...], self.weights[None, ...]
        below = nodes <= x.reshape(-1, 1, 1)
        last = np.where(below, nodes, -np.inf).max(axis=2, keepdims=True)
        first = np.where(below, np.inf, nodes).min(axis=2, keepdims=True)
        lower = ((nodes < last) * w).sum(axis=2).mean(axis=1)
        upper = ((nodes <= first) * w).sum(axis=2).mean(axis=1)
        return lower.reshape(x.shape), upper.reshape(x.shape)


def spectral_density(
    A,
    *,
    num_probes: int = 10,
    lanczos_steps: int = 80,
    num_points: int = 1000,
    sigma: float | None = None,
    seed: int = 0,
) -> SpectralDensity:
    """Stochastic Lanczos quadrature of the symmetric operator ``A`` (P, P).

    num_probes : Rademacher probe vectors (the density's sampling error falls like
        1/√(num_probes · P)).
    lanczos_steps : m, capped at P; quadrature with m nodes is exact for polynomials of degree
        2m − 1 and resolves features wider than about (λ_max − λ_min)/m.
    num_points : grid size.  sigma : Gaussian broadening; default 1 % of the spectral range.
    seed : probes are drawn from this seed, so the result is reproducible.
    Costs ``num_probes · lanczos_steps`` products with ``A``.
    """
    P = operator_size(A)
    num_probes = check_int_range("num_probes", num_probes, 1)
    m = min(check_int_range("lanczos_steps", lanczos_steps, 1), P)
    num_points = check_int_range("num_points", num_points, 2)
    dtype, device = operator_dtype_device(A)
    gen = torch.Generator().manual_seed(int(seed))
    nodes = np.zeros((num_probes, m))
    weights = np.zeros((num_probes, m))
    matvecs = 0
    for i in range(num_probes):
        v = (2.0 * torch.randint(0, 2, (P,), generator=gen, dtype=torch.float64) - 1.0) / np.sqrt(P)
        run = lanczos_tridiagonal(A, v.to(device, dtype), m)
        matvecs += run.steps
        alpha, beta = run.alpha.numpy(), run.beta.numpy()
        theta, S = eigh_tridiagonal(alpha, beta[: run.steps - 1])
        nodes[i, : len(theta)], weights[i, : len(theta)] = theta, S[0] ** 2
        nodes[i, len(theta):] = theta[-1]  # padding with weight 0
    low, high = float(nodes.min()), float(nodes.max())
    if sigma is None:
        sigma = 0.01 * (high - low) if high > low else 1e-3 * max(1.0, abs(high))
    sigma = check_positive("sigma", sigma)
    grid = np.linspace(low - 5 * sigma, high + 5 * sigma, num_points)
    kernel = np.exp(-0.5 * ((grid[:, None] - nodes.reshape(1, -1)) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
    density = kernel @ weights.reshape(-1) / num_probes
    return SpectralDensity(grid, density, nodes, weights, float(sigma), matvecs)
