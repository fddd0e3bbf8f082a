"""The ill-conditioned valley: why SGD's gradient is aligned with the sharp direction.

``L(x, y) = ½(a x² + b y²)`` with ``a > b`` (x sharp, y flat). Each step draws one of two
stochastic losses ``ℓ± = L ± c·x·y`` with probability ½ (so E ℓ = L); its gradient is
``(a x ± c y, b y ± c x)``. The noise in x is proportional to y, so while y ≠ 0 SGD keeps x
bouncing across the valley: ``∇L = (a x, b y)`` points mostly along x (χ ≈ 1) although the
progress happens along y.

The dominant direction is the top Hessian eigenvector of ``L`` (``top_eigen`` on
``diag(a, b)``), i.e. the x-axis: the Hessian of ``L`` is constant, so it is the same at every
point. Dom-SGD keeps only the x part of each stochastic gradient (y freezes: the loss stalls at
about ``½ b y₀²``); Bulk-SGD keeps only the y part (x freezes: the loss falls to about
``½ a x₀²``, small once SGD has run for a while).

Expected losses are exact: with ξ = ±1 independent of the iterate, the second moments
``(E x², E y²)`` follow a linear recursion (``second_moments``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._validation import check_int_range, check_positive
from ._toy import Trajectory, check_start, method_weights, simulate_quadratic


@dataclass(frozen=True)
class Valley:
    """The two-dimensional valley ``½(a x² + b y²)`` with stochastic losses ``L ± c·x·y``.

    a, b : curvatures of the sharp (x) and flat (y) directions, ``a > b > 0``.
    c : noise strength, ``c >= 0``.
    """

    a: float = 1.0
    b: float = 0.002
    c: float = 0.03

    def __post_init__(self):
        check_positive("b", self.b)
        check_positive("c", self.c, allow_zero=True)
        if not check_positive("a", self.a) > self.b:
            raise ValueError(f"a must be larger than b (x is the sharp direction); got a={self.a}, b={self.b}")

    # ------------------------------------------------------------------ the problem
    def hessian(self) -> torch.Tensor:
        """The constant Hessian ``diag(a, b)`` of the full loss, float64 (2, 2)."""
        return torch.diag(torch.tensor([self.a, self.b], dtype=torch.float64))

    def loss(self, xy) -> np.ndarray:
        """``L(x, y)`` for points ``xy`` of shape (..., 2), e.g. a contour grid."""
        xy = np.asarray(xy, dtype=np.float64)
        return 0.5 * (self.a * xy[..., 0] ** 2 + self.b * xy[..., 1] ** 2)

    def gradient_noise(self, theta: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """``∇ℓ± − ∇L = ±c·(y, x)`` for iterates (2, chains), one fair sign per chain."""
        sign = 2.0 * torch.randint(0, 2, (theta.shape[1],), generator=gen, dtype=torch.float64) - 1.0
        return self.c * sign * theta.flip(0)

    # ------------------------------------------------------------------ simulation
    def simulate(self, method: str, *, lr: float, steps: int, start=(0.5, 1.0), chains: int = 1,
                 seed: int = 0) -> Trajectory:
        """Run ``method`` (``"gd"``, ``"sgd"``, ``"dom_sgd"``, ``"bulk_sgd"``, ``"dom_gd"``,
        ``"bulk_gd"``) for ``steps`` steps of size ``lr`` from ``start`` = (x₀, y₀).

        The same ``seed`` gives the same trajectory; chains draw independent signs.
        """
        return simulate_quadratic(self.hessian(), self.gradient_noise, 1, method, lr=lr, steps=steps,
                                  start=start, chains=chains, seed=seed)

    # ------------------------------------------------------------------ closed forms
    def _moment_matrix(self, method: str, lr: float) -> np.ndarray:
        alpha, beta, stochastic = method_weights(method)
        moves_x, moves_y = alpha != 0, beta != 0
        noise = stochastic * (lr * self.c) ** 2
        return np.array([
            [(1 - lr * self.a) ** 2 if moves_x else 1.0, noise * moves_x],
            [noise * moves_y, (1 - lr * self.b) ** 2 if moves_y else 1.0],
        ])

    def second_moments(self, method: str, *, lr: float, steps: int, start=(0.5, 1.0)) -> np.ndarray:
        """Exact ``(E x_t², E y_t²)`` for t = 0 … steps, shape (steps+1, 2).

        A coordinate that the method moves obeys ``E x'² = (1−ηa)² E x² + η²c² E y²`` (the
        cross term vanishes because E ξ = 0); a frozen one keeps its value.
        """
        lr = check_positive("lr", lr)
        steps = check_int_range("steps", steps, 0)
        M = self._moment_matrix(method, lr)
        out = np.empty((steps + 1, 2))
        out[0] = check_start(start, 2).numpy() ** 2
        for t in range(steps):
            out[t + 1] = M @ out[t]
        return out

    def expected_loss(self, method: str, *, lr: float, steps: int, start=(0.5, 1.0)) -> np.ndarray:
        """Exact ``E L(θ_t)`` for t = 0 … steps, shape (steps+1,)."""
        m = self.second_moments(method, lr=lr, steps=steps, start=start)
        return 0.5 * (self.a * m[:, 0] + self.b * m[:, 1])

    def gd_alignment_factor(self, *, lr: float) -> float:
        """Factor by which GD's alignment χ₁(∇L) shrinks per step once it is small:
        ``|1 − ηa| / |1 − ηb|``. GD multiplies x by (1 − ηa) and y by (1 − ηb), and for small χ₁
        ``χ₁ ≈ a|x| / (b|y|)``: the alignment decays geometrically, never in one step (unless ηa = 1)."""
        lr = check_positive("lr", lr)
        if lr * self.b >= 2:
            raise ValueError(f"lr must be below 2/b = {2 / self.b:g} for GD to converge along y; got {lr}")
        return abs(1 - lr * self.a) / abs(1 - lr * self.b)

    def loss_floor(self, method: str, *, lr: float, start=(0.5, 1.0)) -> float:
        """``lim E L(θ_t)`` as t → ∞ (``inf`` when the method diverges at this ``lr``).

        Dom:  ``½ b y₀² + η c² y₀² / (2(2 − ηa))`` (y frozen, x spread by noise ∝ y₀).
        Bulk: ``½ a x₀² + η c² x₀² / (2(2 − ηb))`` (x frozen, y spread by noise ∝ x₀).
        GD, SGD: 0 when the moment recursion is stable.
        """
        lr = check_positive("lr", lr)
        x0, y0 = check_start(start, 2).tolist()
        alpha, beta, stochastic = method_weights(method)
        noise = stochastic * lr * self.c ** 2
        if alpha == 0 or beta == 0:  # Dom or Bulk: one coordinate frozen
            curv, frozen_curv, frozen = (self.a, self.b, y0) if beta == 0 else (self.b, self.a, x0)
            if not 0 < lr * curv < 2:
                return float("inf")
            return 0.5 * frozen_curv * frozen ** 2 + noise * frozen ** 2 / (2 * (2 - lr * curv))
        radius = max(abs(np.linalg.eigvals(self._moment_matrix(method, lr))))
        return 0.0 if radius < 1 else float("inf")
