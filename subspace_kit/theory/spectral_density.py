"""The whole eigenvalue spectrum at once: stochastic Lanczos quadrature (as in PyHessian).

For a unit probe v, m Lanczos steps give a tridiagonal T = S diag(θ) Sᵀ whose Ritz values θ_j
with weights w_j = S[0, j]² are the Gauss quadrature of the spectral measure
``Σ_i (vᵀu_i)² δ(λ − λ_i)``; averaged over random probes, that measure is the spectral
density ``(1/P) Σ_i δ(λ − λ_i)``. ``spectral_density`` returns the quadrature itself
(``nodes``, ``weights``, exact-in-expectation ``cdf``) and a Gaussian-broadened density on a
grid for plotting. Works for any symmetric operator with ``@`` and ``.shape``: a
``HessianOperator``, a Gauss-Newton operator, a dense tensor.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal

from .._validation import check_int_range, check_positive
from ..eigen import _dtype_device, _size


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
        """Estimated fraction of eigenvalues ``<= x`` (unbroadened quadrature), for any shape of x."""
        x = np.asarray(x, dtype=np.float64)
        below = self.nodes[None, ...] <= x.reshape(-1, 1, 1)
        return ((below * self.weights[None, ...]).sum(axis=2).mean(axis=1)).reshape(x.shape)


def _lanczos_tridiagonal(A, q: torch.Tensor, m: int) -> tuple[np.ndarray, np.ndarray]:
    """``(alpha, beta)`` of m Lanczos steps from unit ``q``, full reorthogonalisation; stops
    early (fewer entries) when the Krylov space becomes invariant."""
    n = q.shape[0]
    Q = torch.zeros(n, m, dtype=q.dtype, device=q.device)
    Q[:, 0] = q
    alpha, beta, scale = [], [], 1.0
    for j in range(m):
        w = A @ Q[:, j]
        alpha.append(float(Q[:, j] @ w))
        scale = max(scale, abs(alpha[-1]))
        for _ in range(2):  # twice is enough (Kahan)
            w = w - Q[:, : j + 1] @ (Q[:, : j + 1].T @ w)
        b = float(torch.linalg.vector_norm(w))
        if j == m - 1 or b <= 1e-10 * scale:
            break
        beta.append(b)
        Q[:, j + 1] = w / b
    return np.array(alpha), np.array(beta)


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
    P = _size(A)
    num_probes = check_int_range("num_probes", num_probes, 1)
    m = min(check_int_range("lanczos_steps", lanczos_steps, 1), P)
    num_points = check_int_range("num_points", num_points, 2)
    dtype, device = _dtype_device(A)
    gen = torch.Generator().manual_seed(int(seed))
    nodes = np.zeros((num_probes, m))
    weights = np.zeros((num_probes, m))
    matvecs = 0
    for i in range(num_probes):
        v = (2.0 * torch.randint(0, 2, (P,), generator=gen, dtype=torch.float64) - 1.0) / np.sqrt(P)
        alpha, beta = _lanczos_tridiagonal(A, v.to(device, dtype), m)
        matvecs += len(alpha)
        theta, S = eigh_tridiagonal(alpha, beta)
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
