"""The noisy quadratic: alignment comes from noise, and Dom/Bulk loss floors in closed form.

``L(θ) = ½ xᵀΛx + ½ yᵀMy`` with θ = (x, y): ``k`` sharp curvatures Λ = diag(λ) and many flat
ones M = diag(μ), every λ above every μ. The stochastic gradient is ``∇L + s ⊙ ξ`` with
ξ ~ N(0, I): additive noise of variance ``s_i²`` in coordinate i (one ``s`` for all, or one
per coordinate — e.g. ``s ∝ √h`` for noise shaped like the Hessian, as SGD's is near a
minimum).

Each coordinate is an independent AR(1) process ``θ' = (1 − ηh)θ − η s ξ``, hence exactly
Gaussian with

    Var_∞(θ_i) = η s_i² / (2h_i − η h_i²),   E θ_i,t = (1 − ηh_i)^t θ_i,0.

Gradient flow (GD, small η) kills the sharp components first, so ``∇L`` ends up in the flat
ones: χ → 0. SGD keeps the sharp coordinates at their noise floor, where ``‖Λx‖`` dominates
``‖My‖``: χ stays high. Dom-SGD freezes y (floor ``½ y₀ᵀMy₀`` + the sharp noise floor),
Bulk-SGD freezes x. The dominant subspace is the top-k eigenspace of the (constant) Hessian,
i.e. the sharp coordinates.
"""
from __future__ import annotations

import numpy as np
import torch

from .._validation import check_int_range, check_positive
from ._toy import Trajectory, check_start, method_weights, simulate_quadratic


class NoisyQuadratic:
    """``½ xᵀΛx + ½ yᵀMy`` with additive Gaussian gradient noise.

    Parameters
    ----------
    sharp : the k sharp curvatures λ (k ≥ 1), all positive.
    flat : the flat curvatures μ (at least one), all positive and below ``min(sharp)``.
    noise : the noise standard deviation s ≥ 0: a number, or one per coordinate (k + len(flat)).
    """

    def __init__(self, sharp, flat, noise=1.0):
        self.sharp = np.atleast_1d(np.asarray(sharp, dtype=np.float64))
        self.flat = np.atleast_1d(np.asarray(flat, dtype=np.float64))
        for name, v in (("sharp", self.sharp), ("flat", self.flat)):
            if v.ndim != 1 or len(v) == 0 or not np.isfinite(v).all() or (v <= 0).any():
                raise ValueError(f"{name} must be a non-empty list of positive curvatures, got {v.tolist()}")
        if self.sharp.min() <= self.flat.max():
            raise ValueError(f"every sharp curvature must exceed every flat one; got min(sharp)="
                             f"{self.sharp.min()}, max(flat)={self.flat.max()}")
        self.curvatures = np.concatenate([self.sharp, self.flat])
        d = len(self.curvatures)
        s = np.broadcast_to(np.asarray(noise, dtype=np.float64), (d,)) if np.ndim(noise) == 0 else \
            np.asarray(noise, dtype=np.float64)
        if s.shape != (d,) or not np.isfinite(s).all() or (s < 0).any():
            raise ValueError(f"noise must be a number >= 0 or {d} of them, got {noise!r}")
        self.noise = s.copy()

    @property
    def k(self) -> int:
        """Dimension of the dominant (sharp) subspace."""
        return len(self.sharp)

    @property
    def dim(self) -> int:
        return len(self.curvatures)

    def __repr__(self) -> str:
        return f"NoisyQuadratic(k={self.k}, flat={len(self.flat)}, λ={self.sharp.tolist()})"

    # ------------------------------------------------------------------ the problem
    def hessian(self) -> torch.Tensor:
        """The constant Hessian ``diag(λ, μ)``, float64 (d, d)."""
        return torch.diag(torch.from_numpy(self.curvatures))

    def loss(self, theta) -> np.ndarray:
        """``L(θ)`` for points of shape (..., d)."""
        theta = np.asarray(theta, dtype=np.float64)
        return 0.5 * (self.curvatures * theta ** 2).sum(axis=-1)

    def gradient_noise(self, theta: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """``s ⊙ ξ`` with ξ ~ N(0, I), for iterates (d, chains)."""
        xi = torch.randn(theta.shape, generator=gen, dtype=torch.float64)
        return torch.from_numpy(self.noise)[:, None] * xi

    # ------------------------------------------------------------------ simulation
    def simulate(self, method: str, *, lr: float, steps: int, start=None, chains: int = 1,
                 seed: int = 0) -> Trajectory:
        """Run ``method`` (``"gd"``, ``"sgd"``, ``"dom_sgd"``, ``"bulk_sgd"``, ``"dom_gd"``,
        ``"bulk_gd"``) from ``start`` (d,) (default: all ones) with independent noise per chain."""
        start = np.ones(self.dim) if start is None else start
        return simulate_quadratic(self.hessian(), self.gradient_noise, self.k, method, lr=lr,
                                  steps=steps, start=start, chains=chains, seed=seed)

    # ------------------------------------------------------------------ closed forms
    def stationary_variance(self, lr: float) -> np.ndarray:
        """``η s_i² / (2h_i − η h_i²)`` per coordinate (d,); ``inf`` where ``η h_i ≥ 2``."""
        lr = check_positive("lr", lr)
        h = self.curvatures
        with np.errstate(divide="ignore"):
            return np.where(lr * h < 2, lr * self.noise ** 2 / np.maximum(2 * h - lr * h ** 2, 0.0), np.inf)

    def _moving(self, method: str) -> np.ndarray:
        alpha, beta, _ = method_weights(method)
        return np.where(np.arange(self.dim) < self.k, alpha != 0, beta != 0)

    def expected_loss(self, method: str, *, lr: float, steps: int, start=None) -> np.ndarray:
        """Exact ``E L(θ_t)`` for t = 0 … steps, shape (steps+1,).

        A moving coordinate has ``E θ_t² = r^{2t} θ₀² + V (1 − r^{2t})``, r = 1 − ηh, V its
        stationary variance (0 without noise); a frozen one keeps ``θ₀²``.
        """
        _, _, stochastic = method_weights(method)
        steps = check_int_range("steps", steps, 0)
        theta0 = check_start(np.ones(self.dim) if start is None else start, self.dim).numpy()
        V = self.stationary_variance(lr) if stochastic else np.zeros(self.dim)
        decay = (1 - lr * self.curvatures)[None, :] ** (2 * np.arange(steps + 1)[:, None])
        moving = self._moving(method)
        with np.errstate(invalid="ignore"):
            second = np.where(moving, decay * theta0 ** 2 + V * (1 - decay), theta0 ** 2)
        return 0.5 * (self.curvatures * second).sum(axis=1)

    def loss_floor(self, method: str, *, lr: float, start=None) -> float:
        """``lim E L(θ_t)``: frozen coordinates keep ``½ h θ₀²``, moving ones reach
        ``½ h V = η s² / (2(2 − ηh))`` (with noise) or 0; ``inf`` if one diverges.

        Dom-SGD: ``½ y₀ᵀMy₀ + Σ_sharp η s² / (2(2 − ηλ))``; Bulk-SGD:
        ``½ x₀ᵀΛx₀ + Σ_flat η s² / (2(2 − ημ))``.
        """
        _, _, stochastic = method_weights(method)
        theta0 = check_start(np.ones(self.dim) if start is None else start, self.dim).numpy()
        h, moving = self.curvatures, self._moving(method)
        if (moving & (check_positive("lr", lr) * h >= 2)).any():
            return float("inf")
        V = self.stationary_variance(lr) if stochastic else np.zeros(self.dim)
        return float(0.5 * (h * np.where(moving, V, theta0 ** 2)).sum())
