"""Top-k eigenpairs (largest *algebraic*) of a symmetric operator.

``top_eigen(H, k)`` accepts anything with ``H @ V`` for a block ``V`` of shape ``(P, m)`` and
``.shape``: a ``HessianOperator``, a Gauss-Newton operator, or a plain dense tensor. Methods:

- ``"lanczos"``: Lanczos with full reorthogonalisation (explicit restart when the basis is
  full); fewest products for a cold solve. It keeps the products ``H q_j``, so its residuals
  are explicit ``‖Hv − λv‖ / |λ|`` at no extra cost (the Ritz estimate ``|β_m s_mi|`` only
  decides when to stop: it falls far below the rounding floor of ``H @ v``).
- ``"block"``: LOBPCG on a block of ``k + oversample`` vectors with Rayleigh-Ritz on
  ``[X, R, P]``; uses block products. Each step costs a whole block, so to a tight tol it
  needs 2-3x the products of Lanczos (see the benchmark); the tracker uses one block
  product per update and refines with warm-started Lanczos.
- ``"dense"``: build the matrix and call ``torch.linalg.eigh`` (small operators).
- ``"scipy"``: ARPACK ``eigsh`` on a SciPy ``LinearOperator``, for comparison.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ._validation import check_choice, check_int_range, check_positive, check_vector_block

METHODS = ("auto", "lanczos", "block", "dense", "scipy")


@dataclass(frozen=True)
class EigenResult:
    """Top-k eigenpairs. ``values`` (k,) descending; ``vectors`` (P, k) orthonormal columns;
    ``residuals`` (k,) = ‖Hv − λv‖ / |λ|; ``matvecs`` products spent; ``converged`` all
    residuals ≤ tol."""

    values: torch.Tensor
    vectors: torch.Tensor
    residuals: torch.Tensor
    matvecs: int
    converged: bool
    method: str
    iterations: int = 0

    @property
    def k(self) -> int:
        return len(self.values)


# ---------------------------------------------------------------------------- helpers
def _size(H) -> int:
    shape = getattr(H, "shape", None)
    if shape is None or len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"H must be a square operator with .shape (P, P); got shape {shape}")
    return int(shape[0])


def _dtype_device(H):
    dtype = getattr(H, "dtype", torch.float32)
    device = getattr(H, "device", torch.device("cpu"))
    return dtype, device


def _rel(res: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    scale = values.abs().clamp_min(torch.finfo(values.dtype).tiny ** 0.5)
    return res / scale


def _seeded_block(n: int, m: int, dtype, device, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, m, generator=gen, dtype=torch.float64).to(device, dtype)


def _orthonormalize(V: torch.Tensor) -> torch.Tensor:
    Q, _ = torch.linalg.qr(V)
    return Q


def _finish(values, vectors, residuals, matvecs, tol, method, iterations) -> EigenResult:
    converged = bool((residuals <= tol).all())
    if not converged:
        warnings.warn(
            f"top_eigen(method={method!r}) stopped before reaching tol={tol:g}: largest residual "
            f"{float(residuals.max()):.3g} after {matvecs} products. Raise max_matvecs or tol.",
            RuntimeWarning,
            stacklevel=3,
        )
    return EigenResult(values, vectors, residuals, int(matvecs), converged, method, iterations)


def _explicit_residuals(H, values, vectors, count: list) -> torch.Tensor:
    HV = H @ vectors
    count[0] += vectors.shape[1]
    return _rel(torch.linalg.vector_norm(HV - vectors * values, dim=0), values)


# ---------------------------------------------------------------------------- Lanczos
def _lanczos(H, n, k, tol, v0, max_matvecs, dtype, device, max_basis, extra=0):
    """Top ``k`` (plus ``extra`` unconverged companions) Ritz pairs by Lanczos.

    Returns ``values, vectors, residuals, HV, used, restarts`` for ``k + extra`` pairs. The
    products ``H q_j`` are kept, so the residuals are explicit, ``‖H v − θ v‖ / |θ|`` from the
    same products an outside check would compute, with no extra products: the cheap Ritz
    estimate ``|β s_mi|`` decides when to stop, and the explicit one is what is reported (the
    estimate drops far below rounding level, e.g. to 0 in float32, where the truth is ~1e-6).
    """
    want = min(k + extra, n)
    if max_matvecs < want:
        raise ValueError(f"max_matvecs={max_matvecs} is too small to hold k={want} Lanczos vectors")
    eps = torch.finfo(dtype).eps
    used, restarts, fresh_seed = 0, 0, 1
    q = v0 if v0 is not None else _seeded_block(n, 1, dtype, device)[:, 0]
    q = q.to(device, dtype)
    while True:
        m_cap = min(n, max_basis, max_matvecs - used)
        # One Lanczos vector per row: contiguous writes, and rows are only touched when used.
        Q = torch.empty(m_cap, n, dtype=dtype, device=device)
        HQ = torch.empty(m_cap, n, dtype=dtype, device=device)
        alpha = torch.zeros(m_cap, dtype=torch.float64)
        beta = torch.zeros(m_cap, dtype=torch.float64)
        Q[0] = q / torch.linalg.vector_norm(q)
        j_done, stop = 0, False
        for j in range(m_cap):
            w = H @ Q[j]
            used += 1
            HQ[j] = w
            a = torch.dot(Q[j], w)
            w = w - a * Q[j]
            if j > 0:
                w = w - beta[j - 1].item() * Q[j - 1]
            for _ in range(2):  # full reorthogonalisation, twice is enough
                w = w - Q[: j + 1].T @ (Q[: j + 1] @ w)
            alpha[j] = a.item()
            b = torch.linalg.vector_norm(w).item()
            beta[j] = b
            j_done = j + 1
            scale = max(alpha[:j_done].abs().max().item(), beta[:j_done].max().item(), torch.finfo(dtype).tiny)
            invariant = b <= 10 * eps * scale  # span(Q) is (numerically) invariant under H
            if j_done >= want and (j_done % 2 == 0 or invariant or j_done == m_cap):
                theta, S = _tridiagonal_ritz(alpha, beta, j_done, want)
                if (_rel((b * S[-1, :k]).abs(), theta[:k]) <= tol).all():
                    stop = True  # the Ritz estimates say done; explicit residuals below decide
                    break
            if j_done == m_cap:
                break
            if invariant:
                # A Krylov space that closes before the top k are found (a start vector in an
                # invariant subspace) goes on with a fresh direction orthogonal to it.
                w = _seeded_block(n, 1, dtype, device, seed=fresh_seed)[:, 0]
                fresh_seed += 1
                for _ in range(2):
                    w = w - Q[: j + 1].T @ (Q[: j + 1] @ w)
                b, beta[j] = torch.linalg.vector_norm(w).item(), 0.0
            Q[j + 1] = w / b
        if j_done < want:  # cannot happen while max_matvecs >= want and max_basis >= want
            raise ValueError(f"max_basis is too small to hold k={want} Lanczos vectors")
        theta, S = _tridiagonal_ritz(alpha, beta, j_done, want)
        Sd = S.to(device, dtype)  # the tridiagonal lives on the host; its Ritz data come back
        vectors, HV = Q[:j_done].T @ Sd, HQ[:j_done].T @ Sd
        values = theta.to(device, dtype)
        res = _rel(torch.linalg.vector_norm(HV - vectors * values, dim=0), values)
        # Stop when converged, out of budget, or when the Ritz estimates say done but the explicit
        # residuals do not (the rounding floor of H @ v: more products cannot lower it).
        if stop or (res[:k] <= tol).all() or used + want > max_matvecs or j_done >= n:
            return values, vectors, res, HV, used, restarts
        # Explicit restart from the Ritz vectors, weighted towards the unconverged ones.
        q = vectors @ res.to(dtype)
        restarts += 1


def _tridiagonal_ritz(alpha, beta, m, want):
    """The ``want`` largest eigenpairs (descending) of the m×m Lanczos tridiagonal (float64)."""
    T = torch.diag(alpha[:m]) + torch.diag(beta[: m - 1], 1) + torch.diag(beta[: m - 1], -1)
    theta, S = torch.linalg.eigh(T)
    return theta.flip(0)[:want], S.flip(1)[:, :want]


# ---------------------------------------------------------------------------- LOBPCG
def _rayleigh_ritz(B, HB):
    """Ritz pairs of H on span(B), robust to a nearly dependent B; descending order."""
    G = B.T @ B
    A = B.T @ HB
    A = (A + A.T) / 2
    d, V = torch.linalg.eigh((G + G.T) / 2)
    # Directions whose Gram eigenvalue is at rounding level carry noise, not search directions:
    # 1e-10 suits float64, float32 needs a larger cut (its Gram matrix is accurate to ~1e-7).
    drop = max(1e-10, 1e3 * torch.finfo(B.dtype).eps)
    keep = d > drop * d.max()
    T = V[:, keep] / d[keep].sqrt()
    theta, Z = torch.linalg.eigh(T.T @ A @ T)
    C = T @ Z
    return theta.flip(0), C.flip(1)


def _lobpcg(H, n, k, m, tol, X0, max_matvecs, dtype, device, HX0=None):
    """LOBPCG on a block of ``m >= k`` columns; stops when the first ``k`` residuals are ≤ tol.

    ``HX0``: ``H @ X0`` when the caller already has it (then ``X0`` must be orthonormal).
    Returns ``values (k,), vectors (P, k), residuals (k,), used, iterations, X (P, m), HX``.
    """
    if HX0 is None:
        X = _orthonormalize(X0.to(device, dtype))
        HX = H @ X
        used = X.shape[1]
    else:
        X, HX, used = X0, HX0, 0
    theta, C = _rayleigh_ritz(X, HX)
    X, HX = X @ C, HX @ C
    P = HP = None
    it = 0
    while True:
        R = HX - X * theta
        res = _rel(torch.linalg.vector_norm(R, dim=0), theta)
        if (res[:k] <= tol).all() or used >= max_matvecs:
            break
        active = torch.ones(m, dtype=torch.bool, device=res.device)
        active[:k] = res[:k] > tol  # soft locking of converged wanted pairs
        W = R[:, active]
        W = W - X @ (X.T @ W)
        W = _orthonormalize(W)
        if W.shape[1] > max_matvecs - used:
            W = W[:, : max_matvecs - used]
        HW = H @ W
        used += W.shape[1]
        blocks = [X, W] + ([P] if P is not None else [])
        hblocks = [HX, HW] + ([HP] if HP is not None else [])
        B, HB = torch.cat(blocks, 1), torch.cat(hblocks, 1)
        theta_all, C = _rayleigh_ritz(B, HB)
        theta, C = theta_all[:m], C[:, :m]
        X_new, HX_new = B @ C, HB @ C
        # Search direction: the part of the new X that came from [W, P].
        P, HP = B[:, m:] @ C[m:], HB[:, m:] @ C[m:]
        Pn = torch.linalg.vector_norm(P, dim=0).clamp_min(torch.finfo(dtype).tiny)
        P, HP = P / Pn, HP / Pn
        X, HX = X_new, HX_new
        it += 1
    return theta[:k], X[:, :k], res[:k], used, it, X, HX


# ---------------------------------------------------------------------------- dense & SciPy
def _dense_matrix(H, n, dtype, device, block=512) -> torch.Tensor:
    if isinstance(H, torch.Tensor):
        return H
    cols = []
    for start in range(0, n, block):
        stop = min(start + block, n)
        E = torch.zeros(n, stop - start, dtype=dtype, device=device)
        E[torch.arange(start, stop, device=device), torch.arange(stop - start, device=device)] = 1
        cols.append(H @ E)
    return torch.cat(cols, dim=1)


def _scipy(H, n, k, tol, v0, dtype, device):
    from scipy.sparse.linalg import LinearOperator, eigsh

    count = [0]
    np_dtype = np.float64 if dtype == torch.float64 else np.float32

    def matmat(x):
        x = np.asarray(x).reshape(n, -1)
        count[0] += x.shape[1]
        return (H @ torch.from_numpy(np.ascontiguousarray(x, dtype=np_dtype)).to(device, dtype)).cpu().numpy()

    op = LinearOperator((n, n), matvec=lambda x: matmat(x)[:, 0], matmat=matmat, dtype=np_dtype)
    start = None if v0 is None else v0.detach().cpu().numpy().astype(np_dtype)
    vals, vecs = eigsh(op, k=k, which="LA", tol=tol, v0=start)
    order = np.argsort(vals)[::-1].copy()
    values = torch.from_numpy(vals[order].copy()).to(device, dtype)
    vectors = torch.from_numpy(vecs[:, order].copy()).to(device, dtype)
    solver_count = count[0]
    residuals = _explicit_residuals(H, values, vectors, count)
    return values, vectors, residuals, solver_count, count[0]


# ---------------------------------------------------------------------------- public
def top_eigen(
    H,
    k: int,
    *,
    tol: float = 1e-6,
    v0: torch.Tensor | None = None,
    method: str = "auto",
    max_matvecs: int | None = None,
    oversample: int = 2,
    max_basis: int = 200,
) -> EigenResult:
    """The ``k`` largest-algebraic eigenpairs of the symmetric operator ``H``.

    Parameters
    ----------
    H : operator with ``@`` and ``.shape`` ``(P, P)``, or a dense symmetric tensor.
    k : number of pairs, ``1 <= k < P``.
    tol : relative residual ``‖Hv − λv‖ / |λ|`` every pair must reach.
    v0 : start vector ``(P,)`` (Lanczos, SciPy) or block ``(P, m)`` (block method).
    method : ``"auto"``, ``"lanczos"``, ``"block"``, ``"dense"`` or ``"scipy"``. ``"auto"``
        is dense for small problems (P ≤ 1500) and Lanczos otherwise.
    max_matvecs : product budget; default ``max(300, 30 k)``. Over budget the result has
        ``converged=False`` (with a warning) and honest residuals.
    oversample : extra block columns for the block method (block size ``k + oversample``).
    max_basis : Lanczos basis size before an explicit restart (memory ``P × max_basis``).
    """
    n = _size(H)
    k = check_int_range("k", k, 1, n)
    tol = check_positive("tol", tol)
    method = check_choice("method", method, METHODS)
    oversample = check_int_range("oversample", oversample, 0)
    max_matvecs = check_int_range("max_matvecs", max_matvecs if max_matvecs is not None else max(300, 30 * k), 1)
    dtype, device = _dtype_device(H)
    if v0 is not None:
        check_vector_block("v0", v0, n)
    if method == "auto":
        method = "dense" if n <= 1500 else "lanczos"

    if method == "dense":
        M = _dense_matrix(H, n, dtype, device)
        evals, evecs = torch.linalg.eigh((M + M.T) / 2)
        values, vectors = evals.flip(0)[:k], evecs.flip(1)[:, :k]
        residuals = _rel(torch.linalg.vector_norm(M @ vectors - vectors * values, dim=0), values)
        return _finish(values, vectors, residuals, 0 if isinstance(H, torch.Tensor) else n, tol, method, 1)

    if method == "scipy":
        if v0 is not None and v0.ndim != 1:
            raise ValueError(f"v0 must have shape ({n},) for method='scipy'; got {tuple(v0.shape)}")
        values, vectors, residuals, _, total = _scipy(H, n, k, tol, v0, dtype, device)
        return _finish(values, vectors, residuals, total, tol, method, 1)

    if method == "lanczos":
        if v0 is not None and v0.ndim != 1:
            raise ValueError(f"v0 must have shape ({n},) for method='lanczos'; got {tuple(v0.shape)}")
        values, vectors, residuals, _, used, restarts = _lanczos(
            H, n, k, tol, v0, max_matvecs, dtype, device, max(max_basis, k + 2)
        )
        return _finish(values, vectors, residuals, used, tol, method, restarts + 1)

    # block
    m = min(k + oversample, n)
    X0 = v0.reshape(n, -1) if v0 is not None else _seeded_block(n, m, dtype, device)
    if X0.shape[1] < m:
        X0 = torch.cat([X0.to(device, dtype), _seeded_block(n, m - X0.shape[1], dtype, device, seed=1)], 1)
    values, vectors, residuals, used, it, _, _ = _lobpcg(H, n, k, m, tol, X0[:, :m], max_matvecs, dtype, device)
    return _finish(values, vectors, residuals, used, tol, method, it)
