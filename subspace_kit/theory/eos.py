"""Edge of Stability in two dimensions: self-stabilization (Damian, Nichani & Lee, ICLR 2023).

``SelfStabilization`` is their two-variable picture of GD near the edge, written as a loss:

    L(x, y) = ½ m (y − y*)² + ½ S(y) x²,    S(y) = s₀ + y.

x is the coordinate along the top Hessian eigenvector u, y the coordinate along the gradient of
the sharpness (‖∇S‖ = 1 after scaling). Descending in y (towards y*) raises the sharpness S(y):
*progressive sharpening*. When ``S(y*) > 2/η`` GD cannot reach y*: once S passes 2/η the x
coordinate grows (``x' = (1 − ηS) x``, a flip with gain > 1), and its square pushes y back
through the cubic term ``∂L/∂y ∋ ½ x²`` (the ``∇S``-component of ``∇³L[u, u]``), lowering S.
With the quadratic ℓ(y) this feedback is damped, and GD settles on the period-2 orbit

    S(y_edge) = 2/η,  x_t = ±x̄,  x̄² = 2 m (y* − y_edge)      (``edge_orbit``),

where ``∇L = (S x, 0)`` lies entirely along the oscillation: χ ≈ 1 and no progress. Linearising
the two-step map around the orbit gives determinant ``(1 − ηm + η²x̄²)²``, so the orbit attracts
iff ``η x̄² < m``, i.e. ``η (y* − y_edge) < ½`` (``edge_orbit(lr).stable``). Beyond that GD
keeps oscillating around 2/η without settling, more wildly the further beyond (and it can blow up).

Measured with ``simulate_eos`` for the defaults (s₀ = 0.5, m = 0.1, y* = 1.8), start (0.01, 0)
and η = 1 (η(y* − y_edge) = 0.3): the top eigenvalue rises from 0.50, crosses 2/η at step 18,
keeps rising while x grows and peaks at 1.15 × 2/η at step 89 (the overshoot), then settles at
1.0155 × 2/η (λ₁ exceeds S(y_edge) = 2/η by about x̄²/(2/η − m));
|x_t| → x̄ = 0.245, χ = 0.992. Over steps 1000–2000 with y* = 2.0 (0.5, the boundary) λ₁ moves
between 0.94 and 1.10 × 2/η (χ ≈ 0.99); with y* = 2.1 between 0.45 and 1.31 (χ ≈ 0.36). x = 0 is invariant under GD, so start with x₀ ≠ 0 (real networks never have
exactly zero component along u).

``ScalarFactorization`` (``½ (xy − 1)²``) is the contrast often quoted for EoS: large-step GD
there catapults once to a flatter minimum with sharpness just below 2/η and converges; it does
*not* hover at 2/η.

Dom-GD and Bulk-GD use the top eigenvector of the Hessian at the current point (``top_eigen``,
recomputed every step; it is not the x-axis once x ≠ 0).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from .._validation import check_int_range, check_positive
from ..eigen import top_eigen
from ..projection import alignment, interpolate
from ._toy import check_start, method_weights, one_thread


class EdgeOrbit(NamedTuple):
    """GD's period-2 orbit at the edge: ``x_t = ±amplitude``, ``y_t = y``; ``stable`` says
    whether it attracts nearby iterates (``η (y* − y) < ½``)."""

    amplitude: float
    y: float
    stable: bool


@dataclass(frozen=True)
class SelfStabilization:
    """``½ m (y − y*)² + ½ (s₀ + y) x²`` (see the module docstring).

    s0 : sharpness along x at y = 0.  flat : m > 0, curvature along y.  target : y*.
    """

    s0: float = 0.5
    flat: float = 0.1
    target: float = 1.8

    def __post_init__(self):
        check_positive("flat", self.flat)
        for name in ("s0", "target"):
            if not np.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite, got {getattr(self, name)}")

    def sharpness_along_x(self, y):
        """S(y) = s₀ + y, the curvature in x at height y."""
        return self.s0 + y

    def loss(self, theta) -> float:
        x, y = (float(v) for v in theta)
        return 0.5 * self.flat * (y - self.target) ** 2 + 0.5 * (self.s0 + y) * x ** 2

    def gradient(self, theta: torch.Tensor) -> torch.Tensor:
        x, y = theta
        return torch.stack([(self.s0 + y) * x, self.flat * (y - self.target) + 0.5 * x ** 2])

    def hessian(self, theta: torch.Tensor) -> torch.Tensor:
        x, y = theta
        return torch.stack([torch.stack([self.s0 + y, x]), torch.stack([x, torch.full_like(x, self.flat)])])

    def edge_orbit(self, lr: float) -> EdgeOrbit | None:
        """The period-2 orbit of GD at step size ``lr``: ``S(y) = 2/lr``, ``x = ±√(2m (y* − y))``.

        ``None`` when ``S(y*) <= 2/lr``: GD is then stable at the minimum (0, y*) and never
        reaches the edge."""
        lr = check_positive("lr", lr)
        y_edge = 2.0 / lr - self.s0
        if self.target <= y_edge:
            return None
        return EdgeOrbit(float(np.sqrt(2 * self.flat * (self.target - y_edge))), y_edge,
                         lr * (self.target - y_edge) < 0.5)


@dataclass(frozen=True)
class ScalarFactorization:
    """``½ (x y − 1)²``: minima on the hyperbola xy = 1 with sharpness x² + y² there."""

    def loss(self, theta) -> float:
        x, y = (float(v) for v in theta)
        return 0.5 * (x * y - 1) ** 2

    def gradient(self, theta: torch.Tensor) -> torch.Tensor:
        x, y = theta
        r = x * y - 1
        return torch.stack([r * y, r * x])

    def hessian(self, theta: torch.Tensor) -> torch.Tensor:
        x, y = theta
        off = 2 * x * y - 1
        return torch.stack([torch.stack([y ** 2, off]), torch.stack([off, x ** 2])])


@dataclass(frozen=True)
class EoSRun:
    """A GD run on a small model, indexed by iterate t = 0 … steps.

    path : (steps+1, d) iterates.  loss : (steps+1,).
    sharpness : (steps+1,) top Hessian eigenvalue λ₁(θ_t).
    alignment : (steps+1,) χ₁(∇L(θ_t)) on the top eigenvector at θ_t.
    amplitude : (steps,) oscillation amplitude ½ |u_tᵀ(θ_{t+1} − θ_t)| (x̄ on a period-2 orbit).
    A run that blew up ends early: the remaining entries are ``nan``.
    """

    method: str
    lr: float
    path: np.ndarray
    loss: np.ndarray
    sharpness: np.ndarray
    alignment: np.ndarray
    amplitude: np.ndarray

    @property
    def edge(self) -> float:
        """The stability threshold 2/η."""
        return 2.0 / self.lr


def simulate_eos(model, *, lr: float, steps: int, start=(0.01, 0.0), method: str = "gd") -> EoSRun:
    """Full-batch ``method`` (``"gd"``, ``"dom_gd"`` or ``"bulk_gd"``, k = 1) on ``model``.

    ``model`` has ``loss(θ)``, ``gradient(θ)`` and ``hessian(θ)`` for a float64 tensor θ (d,)
    (``SelfStabilization``, ``ScalarFactorization`` or your own). Deterministic.
    """
    alpha, beta, stochastic = method_weights(method)
    if stochastic:
        raise ValueError(f"method must be full-batch ('gd', 'dom_gd' or 'bulk_gd') here, got {method!r}")
    lr = check_positive("lr", lr)
    steps = check_int_range("steps", steps, 0)
    theta = check_start(start, len(start))
    d = len(theta)
    path = np.full((steps + 1, d), np.nan)
    loss, sharp, chi = (np.full(steps + 1, np.nan) for _ in range(3))
    amp = np.full(steps, np.nan)
    with one_thread():
        for t in range(steps + 1):
            if not torch.isfinite(theta).all() or theta.abs().max() > 1e150:
                break
            g = model.gradient(theta)
            top = top_eigen(model.hessian(theta), 1, method="dense")
            u = top.vectors
            path[t], loss[t], sharp[t], chi[t] = theta.numpy(), model.loss(theta), float(top.values[0]), alignment(g, u)
            if t == steps:
                break
            update = g if alpha == beta == 1.0 else interpolate(g, u, alpha, beta)
            amp[t] = 0.5 * lr * abs(float(u[:, 0] @ update))
            theta = theta - lr * update
    return EoSRun(method, lr, path, loss, sharp, chi, amp)
