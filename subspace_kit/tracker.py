"""Follow the dominant subspace along a training run for about one block of HVPs per refresh.

The first ``update`` solves from scratch (Lanczos). A later update multiplies ``H`` once onto
the carried block ``X`` of ``k + oversample`` orthonormal vectors and then, cheapest first:

1. **certified**: the Ritz pairs of span(X) already have explicit residuals ≤ ``tol``
   (the Hessian moved little): ``k + oversample`` products.
2. **filtered**: one SGD step typically turns the top-k subspace by more than ``tol`` (about
   0.02–0.05 rad on the paper's MLP), so span(X) alone cannot pass. But ``H X`` is a power step
   for free: the new directions span(X) misses lie mostly in the bulk, whose eigenvalues are
   far below λ_k, so span(H X) is an order of magnitude closer to the new top-k subspace
   (measured ~1e-3 rad there). By default it is checked *explicitly*: one more block product
   ``H U`` on U = orth(H X), Rayleigh-Ritz on span(U), accepted only when every explicit
   residual is ≤ ``tol``; ``2 (k + oversample)`` products. With ``probes > 0`` the check is
   instead a randomized estimate of the root-sum-square of the k relative residuals from
   ``probes`` products, accepted at ≤ ``tol / 2`` (``"estimated"``). That estimate can pass
   an update outside tolerance: with g Gaussian probes and a residual dominated by one
   direction the estimate is ``rss · sqrt(χ²_g / g)``, so an update with rss just above tol
   passes with probability P(χ²_g ≤ g/4) (9 % for g = 4); an independent check saw sin 1.4e-2
   accepted at tol 1e-2. It is kept for comparison only.
3. **refined**: otherwise Lanczos restarts from the sum of the filtered vectors until every
   residual is explicitly ≤ ``tol`` (a warm single vector needs fewer products than a cold
   Lanczos, and far fewer than a block method, whose products per step grow with the block).

Either way the next update starts from span(H X_final) (a power step costing nothing), which
removes the error carried over from this update.

Cheaper refreshes between full updates: ``update(H, refresh="block")`` (one block of
subspace iteration) and ``update(H, refresh="rotate", columns=p)`` (p products: p basis vectors
take a power step in turn); neither measures residuals, so certify with a full update at
intervals. Along an SGD trajectory of the paper's MLP (``benchmarks/results/refresh.md``) a full
update costs 24 HVPs and stays within sin 0.002 of the exact top-10 subspace; ``rotate`` with
p = 2 costs 2 HVPs (2.6 full-data gradients) and stayed within sin 0.041.
"""
from __future__ import annotations

import torch

from ._validation import check_choice, check_int_range, check_positive
from .eigen import (EigenResult, apply_operator, eigen_result, lanczos_top, orthonormalize, rayleigh_ritz,
                    relative_residuals, seeded_block)
from .operators import operator_dtype_device, operator_size


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
    probes : 0 (default): a filtered update is accepted on explicit residuals, so every
        accepted update has explicit residuals ≤ tol. ``> 0``: the old randomized check with
        that many products, which can accept an update outside tol (see the module docstring).

    ``update(H).method`` says which path answered: ``"lanczos"`` (cold), ``"certified"``,
    ``"filtered"`` (explicit residuals), ``"estimated"`` (``probes > 0``: residuals are the
    randomized estimate, the same number for every pair) or ``"refined"`` (warm Lanczos).
    """

    def __init__(self, k: int, *, oversample: int = 2, tol: float = 1e-2,
                 cold_tol: float | None = None, max_matvecs: int | None = None, probes: int = 0):
        self.k = check_int_range("k", k, 1)
        self.oversample = check_int_range("oversample", oversample, 0)
        self.tol = check_positive("tol", tol)
        self.cold_tol = check_positive("cold_tol", cold_tol if cold_tol is not None else min(tol, 1e-3))
        self.max_matvecs = None if max_matvecs is None else check_int_range("max_matvecs", max_matvecs, 1)
        self.probes = check_int_range("probes", probes, 0)
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

    def state_dict(self) -> dict:
        """Everything the next ``update`` depends on, as tensors and ints (saved without pickle
        by the run store): the carried block, the basis and eigenvalues in use, and the update
        count (it seeds the random probes). ``{}`` before the first update."""
        if self._block is None:
            return {}
        return {"block": self._block, "basis": self.result.vectors, "values": self.result.values,
                "updates": self.updates, "total_matvecs": self.total_matvecs}

    def load_state_dict(self, state: dict) -> None:
        """Put the tracker exactly where ``state_dict()`` left it (``{}``: a fresh tracker)."""
        if not state:
            self.reset()
            return
        block, basis, values = state["block"], state["basis"], state["values"]
        k = basis.shape[1]
        self._block = block
        nan = torch.full((k,), float("nan"), dtype=basis.dtype, device=basis.device)
        self.result = EigenResult(values[:k].to(basis.device, basis.dtype), basis, nan, 0, False, "restored")
        self.updates = int(state["updates"])
        self.total_matvecs = int(state.get("total_matvecs", 0))

    def update(self, H, *, refresh: str = "full", columns: int = 2) -> EigenResult:
        """Top-k eigenpairs of ``H``, warm-started from the previous update.

        ``refresh`` (after the first update, which is always a cold solve):

        - ``"full"``: certified, filtered or refined as the module docstring says; every
          residual explicit and ≤ ``tol`` (unless over budget).
        - ``"block"``: exactly one block of ``k + oversample`` products: Rayleigh-Ritz on the
          carried block, then its free power step span(H Z), whose first k vectors are the
          basis returned (one power step closer to the new subspace than the Ritz vectors);
          values are the Ritz values; no residuals (NaN), ``method="iterated"``.
        - ``"rotate"``: ``columns`` products: that many of the k basis vectors take one power
          step (``x ← Hx``, orthogonalised against the others), in turn, so the whole basis is
          renewed every ``k / columns`` calls. Cheapest; no residuals (NaN) and the eigenvalues
          of the last full or block update (``method="rotated"``). Certify with a ``"full"``
          update at intervals.

        ``benchmarks/results/refresh.md`` measures cost and distance to the exact subspace of
        each along an SGD trajectory of the paper's MLP.
        """
        n = operator_size(H)
        k = check_int_range("k", self.k, 1, n)
        refresh = check_choice("refresh", refresh, ("full", "block", "rotate"))
        if refresh == "rotate":  # only a rotation uses it (and k = 1 leaves one column to rotate)
            columns = check_int_range("columns", columns, 1, k + 1)
        m = min(k + self.oversample, n - 1)
        budget = self.max_matvecs or max(300, 30 * k)
        dtype, device = operator_dtype_device(H)
        if self._block is None or self._block.shape[0] != n:
            result, _ = self._cold(H, n, k, m, budget, dtype, device)
        elif refresh == "block":
            used, theta, Z, HZ, _ = self._block_ritz(H, n, m, dtype, device)
            self._block = self._next_block(Z, HZ)
            nan = torch.full((k,), float("nan"), dtype=dtype, device=device)
            result = EigenResult(theta[:k], self._block[:, :k], nan, used, False, "iterated", 0)
        elif refresh == "rotate":
            result = self._rotate(H, k, columns, dtype, device)
        else:
            result, _ = self._warm(H, n, k, m, budget, dtype, device)
        self.result = result
        self.total_matvecs += result.matvecs
        self.updates += 1
        return result

    def _rotate(self, H, k, columns, dtype, device) -> EigenResult:
        """One power step on ``columns`` basis vectors, chosen in turn by the update count."""
        U = self.basis.to(device, dtype).clone()
        cols = [(self.updates * columns + i) % k for i in range(columns)]
        others = [j for j in range(k) if j not in cols]
        V = apply_operator(H, U[:, cols])
        for _ in range(2):  # against the untouched vectors, twice for rounding
            V = V - U[:, others] @ (U[:, others].T @ V)
        U[:, cols] = orthonormalize(V)
        # The carried block keeps the new basis first and its old extra columns, re-orthogonalised.
        extra = self._block.to(device, dtype)[:, k:]
        extra = extra - U @ (U.T @ extra)
        self._block = orthonormalize(torch.cat([U, extra], 1)) if extra.shape[1] else U
        self._block[:, :k] = U  # QR may flip signs; keep the basis exactly
        nan = torch.full((k,), float("nan"), dtype=dtype, device=device)
        values = self.result.values.to(device, dtype)
        return EigenResult(values, U, nan, columns, False, "rotated", 0)

    # ------------------------------------------------------------------ paths
    def _cold(self, H, n, k, m, budget, dtype, device):
        # Converge the k wanted pairs only; the oversample companions ride along unconverged
        # (asking all m to converge costs far more when λ_k+1.. sit in a cluster).
        s = lanczos_top(H, k, tol=self.cold_tol, max_matvecs=budget, extra=m - k)
        self._block = self._next_block(s.vectors, s.products)
        result = eigen_result(s.values[:k], s.vectors[:, :k], s.residuals[:k], s.matvecs, self.cold_tol, "lanczos",
                              s.restarts + 1)
        return result, s.products

    def _block_ritz(self, H, n, m, dtype, device):
        """One block product on the carried block: ``(used, theta, Z, HZ, residuals)`` of its
        Ritz pairs (m of them, descending), residuals explicit."""
        X = self._block.to(device, dtype)[:, :m]
        if X.shape[1] < m:  # a restored block from a run with less oversampling
            X = torch.cat([X, seeded_block(n, m - X.shape[1], dtype, device)], 1)
        X = orthonormalize(X)
        HX = apply_operator(H, X)
        theta, C = rayleigh_ritz(X, HX)
        theta, Z, HZ = theta[:m], X @ C[:, :m], HX @ C[:, :m]
        res = relative_residuals(torch.linalg.vector_norm(HZ - Z * theta, dim=0), theta)
        return X.shape[1], theta, Z, HZ, res

    def _warm(self, H, n, k, m, budget, dtype, device):
        used, theta, Z, HZ, res = self._block_ritz(H, n, m, dtype, device)
        if (res[:k] <= self.tol).all():
            self._block = self._next_block(Z, HZ)
            return eigen_result(theta[:k], Z[:, :k], res[:k], used, self.tol, "certified", 0), HZ

        # One power step could plausibly bring the residuals under tol: check it.
        if res[:k].max() <= 10 * self.tol:
            U = self._next_block(Z, HZ)
            if self.probes == 0 and used + m <= budget:
                HU = apply_operator(H, U)
                used += m
                theta_u, C = rayleigh_ritz(U, HU)
                theta_u, W, HW = theta_u[:m], U @ C[:, :m], HU @ C[:, :m]
                res_u = relative_residuals(torch.linalg.vector_norm(HW - W * theta_u, dim=0), theta_u)
                if (res_u[:k] <= self.tol).all():
                    self._block = self._next_block(W, HW)
                    return eigen_result(theta_u[:k], W[:, :k], res_u[:k], used, self.tol, "filtered", 0), HW
                Z, HZ = W, HW  # refine from the better block
            elif self.probes and used + self.probes <= budget:
                estimate = self._probe(H, U[:, :k], theta[:k], dtype, device)
                used += self.probes
                if estimate <= self.tol / 2:
                    self._block = U
                    residuals = torch.full((k,), estimate, dtype=dtype, device=device)
                    return eigen_result(theta[:k], U[:, :k], residuals, used, self.tol, "estimated", 0), None

        # Refine: Lanczos from the sum of the filtered block. A block method (LOBPCG, block
        # Krylov) spends k + oversample products per step and needed 2-3x the products of a
        # cold Lanczos on the test problems; one warm vector already carries the old subspace.
        U = self._next_block(Z, HZ)
        s = lanczos_top(H, k, tol=self.tol, v0=U.sum(1), max_matvecs=max(budget - used, m), extra=m - k)
        self._block = self._next_block(s.vectors, s.products)
        return eigen_result(s.values[:k], s.vectors[:, :k], s.residuals[:k], used + s.matvecs, self.tol, "refined",
                            s.restarts + 1), s.products

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _next_block(V: torch.Tensor, HV: torch.Tensor) -> torch.Tensor:
        """span(H V): one power step, free because ``H V`` is known. Columns stay in the
        order of V's Ritz values (Gram-Schmidt), so column i approximates eigenvector i."""
        if HV is None or not torch.isfinite(HV).all():
            return V
        U = orthonormalize(HV)
        # QR fixes each column's sign arbitrarily; keep V's orientation so bases do not flip.
        signs = torch.sign((U * V).sum(0))
        signs[signs == 0] = 1
        return U * signs

    def _probe(self, H, U, values, dtype, device) -> float:
        """Randomized estimate of sqrt(Σ_i (‖H u_i − λ_i u_i‖ / |λ_i|)²) from ``probes`` products."""
        gen = torch.Generator().manual_seed(1000 + self.updates)
        G = torch.randn(U.shape[1], self.probes, generator=gen, dtype=torch.float64).to(device, dtype)
        G = G / values.abs().clamp_min(torch.finfo(dtype).tiny)[:, None]
        E = apply_operator(H, U @ G) - U @ (values[:, None] * G)
        return float(torch.linalg.matrix_norm(E) / self.probes ** 0.5)
