"""Follow the dominant subspace along a training run for about one block of HVPs per refresh.

The first ``update`` solves from scratch (Lanczos). Later updates warm-start LOBPCG from the
previous ``k + oversample`` Ritz vectors: when the Hessian moved little, the first block
product already certifies the residuals and the update costs ``k + oversample`` HVPs; more
iterations run only when the residuals say so.
"""
from __future__ import annotations

import torch

from ._validation import check_int_range, check_positive
from .eigen import EigenResult, _finish, _lobpcg, _size, _dtype_device, top_eigen


class SubspaceTracker:
    """Warm-started top-k eigenspace of a changing symmetric operator.

    Parameters
    ----------
    k : subspace dimension.
    oversample : extra Ritz vectors carried between updates (block size ``k + oversample``);
        they speed up convergence when eigenvalue ``k`` and ``k+1`` are close.
    tol : relative residual target for every one of the ``k`` pairs.
    cold_tol : residual target of the first (cold) solve; default ``min(tol, 1e-3)``.
    max_matvecs : budget per update; over it the result says ``converged=False``.
    """

    def __init__(self, k: int, *, oversample: int = 2, tol: float = 1e-2,
                 cold_tol: float | None = None, max_matvecs: int | None = None):
        self.k = check_int_range("k", k, 1)
        self.oversample = check_int_range("oversample", oversample, 0)
        self.tol = check_positive("tol", tol)
        self.cold_tol = check_positive("cold_tol", cold_tol if cold_tol is not None else min(tol, 1e-3))
        self.max_matvecs = max_matvecs
        self._block: torch.Tensor | None = None
        self.result: EigenResult | None = None
        self.total_matvecs = 0
        self.updates = 0

    @property
    def basis(self) -> torch.Tensor | None:
        """The current orthonormal basis ``(P, k)`` of the dominant subspace, or ``None``."""
        return None if self.result is None else self.result.vectors

    def reset(self) -> None:
        """Forget the basis: the next update is a cold solve."""
        self._block, self.result = None, None

    def restore(self, block: torch.Tensor, values: torch.Tensor | None = None) -> None:
        """Resume from a saved block of ``k + oversample`` orthonormal Ritz vectors (P, m),
        e.g. from a checkpoint; ``basis`` is its first ``k`` columns until the next update."""
        self._block = block
        k = self.k
        nan = torch.full((k,), float("nan"), dtype=block.dtype, device=block.device)
        vals = values[:k].to(block.device, block.dtype) if values is not None else nan
        self.result = EigenResult(vals, block[:, :k], nan.clone(), 0, False, "restored")

    def update(self, H) -> EigenResult:
        """Top-k eigenpairs of ``H``, warm-started from the previous update."""
        n = _size(H)
        check_int_range("k", self.k, 1, n)
        m = min(self.k + self.oversample, n - 1)
        budget = self.max_matvecs or max(300, 30 * self.k)
        if self._block is None or self._block.shape[0] != n:
            cold = top_eigen(H, m, tol=self.cold_tol, method="lanczos", max_matvecs=budget)
            self._block = cold.vectors
            result = EigenResult(cold.values[: self.k], cold.vectors[:, : self.k], cold.residuals[: self.k],
                                 cold.matvecs, bool((cold.residuals[: self.k] <= self.cold_tol).all()),
                                 "lanczos", cold.iterations)
        else:
            dtype, device = _dtype_device(H)
            values, vectors, residuals, used, it, block = _lobpcg(
                H, n, self.k, m, self.tol, self._block.to(device, dtype), budget, dtype, device
            )
            self._block = block
            result = _finish(values, vectors, residuals, used, self.tol, "block", it)
        self.result = result
        self.total_matvecs += result.matvecs
        self.updates += 1
        return result
