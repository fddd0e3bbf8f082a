"""A dominant subspace from first-order information only (DOME-style): the top eigenvectors of
the second moment (or covariance) of minibatch gradients, estimated while streaming.

Near a minimum with the kit's MSE (``L`` = mean over samples of Σ_c (out_c − y_c)², C classes)
and minibatches of B samples, the gradient second moment is about

    E[g gᵀ] ≈ 2L / (B·C) · H.

Why: a sample's gradient is ``2 J_iᵀ r_i`` (J_i the C×P output Jacobian, r_i the residual), so
near ∇L = 0 the minibatch mean has second moment ``(4/B)·mean_i J_iᵀ r_i r_iᵀ J_i``; with
residuals independent of J and isotropic, ``E[r rᵀ] = (L/C)·I``, giving ``(4L/(BC))·mean_i
J_iᵀ J_i = (2L/(BC))·G`` with G the Gauss-Newton part of H, which is most of H there. (DOME's
"2L·H" drops the 1/(BC).) The scalar does not move eigenvectors: what makes this subspace agree
with the Hessian's top-k eigenspace is the proportionality, exact for least squares at the
solution when the residuals are independent of the inputs, approximate otherwise
(``tests/test_theory_covariance.py`` checks the factor numerically). It costs no
Hessian-vector products.

``CovarianceSubspace`` keeps a rank-r factor ``B`` (P, r) with ``B Bᵀ`` the running estimate of
the second moment. Each block of gradients G (P, m) is merged by one Rayleigh–Ritz step on
span([B, G]): the new factor spans the top r eigenvectors of ``w_old·B Bᵀ + w_new·G Gᵀ/m``. This
is the block power method run on the running estimate to convergence in one step (incremental
PCA); with r ≥ the number of samples seen it equals the exact eigendecomposition of all of them.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call, grad

from .._validation import check_int_range, check_positive


class CovarianceSubspace:
    """Streaming top-k eigenspace of the gradient second moment ``E[g gᵀ]`` (or ``Cov[g]``).

    Parameters
    ----------
    k : subspace dimension.
    oversample : extra directions kept in the running factor (rank ``k + oversample``); they
        limit the truncation error when eigenvalue k is not well separated from the rest.
    centered : estimate ``Cov[g] = E[(g − ḡ)(g − ḡ)ᵀ]`` (each block centred on its own mean,
        unbiased, needs blocks of at least 2) instead of ``E[g gᵀ]``.
    decay : ``None`` weighs every sample seen equally; a number in [0, 1) forgets old blocks
        geometrically (new estimate = decay·old + (1 − decay)·block), to follow training.
    """

    def __init__(self, k: int, *, oversample: int = 10, centered: bool = False, decay: float | None = None):
        self.k = check_int_range("k", k, 1)
        self.rank = self.k + check_int_range("oversample", oversample, 0)
        self.centered = bool(centered)
        if decay is not None and not 0 <= check_positive("decay", decay, allow_zero=True) < 1:
            raise ValueError(f"decay must be None or in [0, 1), got {decay}")
        self.decay = decay
        self.reset()

    def reset(self) -> None:
        """Forget everything seen."""
        self._factor: torch.Tensor | None = None
        self._values: torch.Tensor | None = None
        self.samples = 0

    @property
    def basis(self) -> torch.Tensor | None:
        """Orthonormal basis (P, k) of the estimated top-k eigenspace (fewer columns while fewer
        than k gradients have been seen), or ``None`` before data."""
        if self._factor is None:
            return None
        return self._factor[:, : self.k] / self._values[: self.k].sqrt().clamp_min(torch.finfo(self._factor.dtype).tiny)

    @property
    def values(self) -> torch.Tensor | None:
        """The k largest eigenvalues of the running estimate, descending."""
        return None if self._values is None else self._values[: self.k]

    def update(self, G: torch.Tensor) -> torch.Tensor:
        """Merge a block of gradients ``G`` (P, m) (or one gradient (P,)); returns ``basis``."""
        if not isinstance(G, torch.Tensor) or G.ndim not in (1, 2) or not torch.isfinite(G).all():
            raise ValueError("G must be a finite tensor of shape (P,) or (P, m)")
        G = G.reshape(G.shape[0], -1)
        m = G.shape[1]
        if self._factor is not None and G.shape[0] != self._factor.shape[0]:
            raise ValueError(f"G must have {self._factor.shape[0]} rows like the previous blocks, got {G.shape[0]}")
        if self.centered:
            if m < 2:
                raise ValueError(f"centered=True needs blocks of at least 2 gradients, got {m}")
            G = (G - G.mean(dim=1, keepdim=True)) * (m / (m - 1)) ** 0.5
        if self._factor is None:
            w_old, w_new = 0.0, 1.0
        elif self.decay is None:
            w_old, w_new = self.samples / (self.samples + m), m / (self.samples + m)
        else:
            w_old, w_new = self.decay, 1.0 - self.decay
        parts = [(w_new / m) ** 0.5 * G]
        if self._factor is not None and w_old > 0:
            parts.insert(0, w_old ** 0.5 * self._factor)
        M = torch.cat(parts, dim=1)
        # Rayleigh-Ritz on span(M): eigenpairs of M Mᵀ from the smaller of Mᵀ M and M Mᵀ.
        wide = M.shape[1] > M.shape[0]
        values, W = torch.linalg.eigh(M @ M.T if wide else M.T @ M)
        values, W = values.flip(0)[: self.rank].clamp_min(0.0), W.flip(1)[:, : self.rank]
        # Factor columns: √λ_j · eigenvector j (M w_j has exactly that norm).
        self._factor, self._values = (W * values.sqrt() if wide else M @ W), values
        self.samples += m
        return self.basis


def covariance_basis(G: torch.Tensor, k: int, *, centered: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k eigenpairs ``(basis (P, k), values (k,))`` of ``G Gᵀ / m`` for the gradients
    ``G`` (P, m) (of their covariance with ``centered``): the one-shot version of
    ``CovarianceSubspace``."""
    if not isinstance(G, torch.Tensor) or G.ndim != 2 or G.shape[1] < k:
        raise ValueError(f"G must be a (P, m) tensor with m >= k={k} gradients, got "
                         f"{tuple(G.shape) if isinstance(G, torch.Tensor) else type(G).__name__}")
    estimator = CovarianceSubspace(k, oversample=max(0, G.shape[1] - k), centered=centered)
    return estimator.update(G), estimator.values


def minibatch_gradients(
    model: nn.Module,
    loss_fn,
    X: torch.Tensor,
    Y: torch.Tensor,
    *,
    batch_size: int,
    num_batches: int,
    seed: int = 0,
) -> torch.Tensor:
    """Gradients (P, num_batches) of the mean loss on random minibatches, flattened in
    ``model.parameters()`` order (trainable parameters only), at the model's current parameters.

    Each minibatch is ``batch_size`` distinct samples drawn uniformly from ``(X, Y)``; batches
    are independent and reproducible from ``seed``. First-order only: no HVPs. The model's
    buffers and train/eval mode are read, not changed.
    """
    n = len(X)
    if len(Y) != n:
        raise ValueError(f"X and Y must have the same length; got len(X)={n}, len(Y)={len(Y)}")
    batch_size = check_int_range("batch_size", batch_size, 1, n + 1)
    num_batches = check_int_range("num_batches", num_batches, 1)
    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    if not params:
        raise ValueError("model has no trainable parameters")

    def loss_of(params, Xb, Yb):
        buffers = {name: b.clone() for name, b in model.named_buffers()}
        return loss_fn(functional_call(model, {**params, **buffers}, (Xb,)), Yb)

    gradient = grad(loss_of)
    gen = torch.Generator().manual_seed(int(seed))
    columns = []
    for _ in range(num_batches):
        idx = torch.randperm(n, generator=gen)[:batch_size].to(X.device)
        g = gradient(params, X[idx], Y[idx])
        columns.append(torch.cat([g[name].reshape(-1) for name in params]))
    return torch.stack(columns, dim=1)
