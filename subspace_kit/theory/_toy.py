"""The shared engine of the quadratic toy problems (``valley``, ``quadratic``).

Both have a constant Hessian ``H`` (d, d) and a full loss ``L(θ) = ½ θᵀ H θ``; they differ only
in the noise their stochastic gradient adds to ``H θ``. Methods name the update rule of the paper
(see ``METHODS``); the dominant subspace is the top-k eigenspace of ``H``, computed once with
``top_eigen`` because ``H`` does not change.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .._validation import check_choice, check_int_range, check_positive
from ..eigen import top_eigen
from ..projection import alignment, interpolate

# method -> (weight of the dominant part, weight of the bulk part, stochastic gradient?)
METHODS = {
    "gd": (1.0, 1.0, False),
    "sgd": (1.0, 1.0, True),
    "dom_gd": (1.0, 0.0, False),
    "bulk_gd": (0.0, 1.0, False),
    "dom_sgd": (1.0, 0.0, True),
    "bulk_sgd": (0.0, 1.0, True),
}


def method_weights(method: str) -> tuple[float, float, bool]:
    """``(alpha, beta, stochastic)`` of a method: the update is ``alpha·dom(g) + beta·bulk(g)``."""
    return METHODS[check_choice("method", method, METHODS)]


@dataclass(frozen=True)
class Trajectory:
    """One simulated run of a toy problem, as plain arrays.

    method, lr : the update rule (see ``METHODS``) and the step size η.
    path : (steps+1, d) the iterates θ_0 … θ_T of the first chain.
    loss : (steps+1, chains) the full loss L(θ_t) of every chain.
    alignment : (steps+1,) χ_k(∇L(θ_t)) = ‖P_k ∇L‖ / ‖∇L‖ along the first chain.
    final : (chains, d) the last iterate of every chain.
    basis : (d, k) the orthonormal dominant basis used (top-k eigenvectors of the Hessian).
    """

    method: str
    lr: float
    path: np.ndarray
    loss: np.ndarray
    alignment: np.ndarray
    final: np.ndarray
    basis: np.ndarray

    @property
    def mean_loss(self) -> np.ndarray:
        """(steps+1,) the loss averaged over chains."""
        return self.loss.mean(axis=1)


@contextmanager
def one_thread():
    """Run torch on one thread inside: the toys multiply tiny matrices, where a thread pool
    only adds synchronisation (measured 30x slower on a busy 2-core machine)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def check_start(start, d: int) -> torch.Tensor:
    """The start point as a float64 tensor (d,); ``ValueError`` naming ``start`` otherwise."""
    theta = torch.as_tensor(np.asarray(start, dtype=np.float64))
    if theta.shape != (d,) or not torch.isfinite(theta).all():
        raise ValueError(f"start must hold {d} finite numbers, got {start!r}")
    return theta


def simulate_quadratic(
    hessian: torch.Tensor,
    noise: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
    k: int,
    method: str,
    *,
    lr: float,
    steps: int,
    start,
    chains: int = 1,
    seed: int = 0,
) -> Trajectory:
    """Run ``method`` on ``L = ½ θᵀHθ`` with stochastic gradient ``Hθ + noise(θ, gen)``.

    ``noise`` maps the iterates (d, chains) and a seeded generator to the gradient noise
    (d, chains). All chains start at ``start`` and draw independent noise.
    """
    alpha, beta, stochastic = method_weights(method)
    lr = check_positive("lr", lr)
    steps = check_int_range("steps", steps, 0)
    chains = check_int_range("chains", chains, 1)
    d = hessian.shape[0]
    theta0 = check_start(start, d)
    gen = torch.Generator().manual_seed(int(seed))
    U = top_eigen(hessian, k, method="dense").vectors
    diagonal = torch.diagonal(hessian)
    if torch.equal(hessian, torch.diag(diagonal)):  # both toys: elementwise is ~d times cheaper
        def apply_hessian(theta):
            return diagonal[:, None] * theta
    else:
        def apply_hessian(theta):
            return hessian @ theta

    theta = theta0[:, None].repeat(1, chains)
    path = torch.empty(steps + 1, d, dtype=torch.float64)
    loss = torch.empty(steps + 1, chains, dtype=torch.float64)
    chi = torch.empty(steps + 1, dtype=torch.float64)
    with one_thread():
        for t in range(steps + 1):
            grad = apply_hessian(theta)
            path[t] = theta[:, 0]
            loss[t] = 0.5 * (theta * grad).sum(dim=0)
            chi[t] = alignment(grad[:, 0], U)
            if t == steps:
                break
            g = grad + noise(theta, gen) if stochastic else grad
            theta = theta - lr * (g if alpha == beta == 1.0 else interpolate(g, U, alpha, beta))
    return Trajectory(method, lr, path.numpy(), loss.numpy(), chi.numpy(), theta.T.numpy().copy(),
                      U.numpy())
