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

Building blocks shared with the tracker and ``theory.spectral_density`` are public here:
``lanczos_tridiagonal`` (the one Lanczos kernel: basis and tridiagonal coefficients),
``lanczos_top`` (restarted top-k Lanczos on that kernel), ``rayleigh_ritz``,
``relative_residuals``, ``orthonormalize``, ``seeded_block``, ``eigen_result``, and
``apply_operator`` (every product the solvers take: a non-finite result raises
``NonFiniteOperatorError``, a ``ValueError`` that blames the operator, not a vector the user
never passed). The operator protocol lives in ``operators.py``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ._validation import check_choice, check_int_range, check_positive, check_vector_block
from .operators import operator_dtype_device, operator_size

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
class NonFiniteOperatorError(ValueError, torch.linalg.LinAlgError):
    """``H @ v`` gave nan or inf for a finite ``v``: the operator itself is not finite there.

    A ``ValueError`` (bad input) and a ``torch.linalg.LinAlgError``, so code that treats a failed
    eigensolve as a diverged run (the engine's refresh) catches it too."""


def apply_operator(H, V: torch.Tensor) -> torch.Tensor:
    """``H @ V`` for the solvers' own (finite) vectors; raises ``NonFiniteOperatorError`` when
    the product is not finite, so the operator is blamed rather than a vector nobody passed."""
    out = H @ V
    if not torch.isfinite(out).all():
        raise NonFiniteOperatorError(
            "H @ v returned non-finite values (nan or inf) for a finite v: the operator is not finite "
            "here (for a HessianOperator: the model's parameters, outputs or loss hold nan/inf, e.g. "
            "after a diverged step)")
    return out


def relative_residuals(res: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``res / |values|`` with the divisor floored at sqrt(tiny), so a zero eigenvalue gives a
    large finite number instead of inf."""
    scale = values.abs().clamp_min(torch.finfo(values.dtype).tiny ** 0.5)
    return res / scale


def seeded_block(n: int, m: int, dtype, device, seed: int = 0) -> torch.Tensor:
    """A reproducible Gaussian block ``(n, m)`` (drawn in float64 on the CPU, then cast)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, m, generator=gen, dtype=torch.float64).to(device, dtype)


def orthonormalize(V: torch.Tensor) -> torch.Tensor:
    """Orthonormal columns spanning ``V`` (P, m) (thin QR)."""
    Q, _ = torch.linalg.qr(V)
    return Q


def eigen_result(values, vectors, residuals, matvecs, tol, method, iterations=0) -> EigenResult:
    """An ``EigenResult``; ``converged`` when every residual is ≤ ``tol``, with a warning if not."""
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
    HV = apply_operator(H, vectors)
    count[0] += vectors.shape[1]
    return relative_residuals(torch.linalg.vector_norm(HV - vectors * values, dim=0), values)


# ---------------------------------------------------------------------------- Lanczos
@dataclass(frozen=True)
class LanczosBasis:
    """``m`` steps of Lanczos from a start vector (``lanczos_tridiagonal``).

    ``basis`` (m, P): orthonormal Lanczos vectors q_j as rows. ``products`` (m, P): H q_j as
    rows, or ``None`` when not kept. ``alpha`` (m,), ``beta`` (m,) float64 on the host: the
    tridiagonal T = Qᵀ H Q has diagonal ``alpha`` and off-diagonal ``beta[:m-1]``; ``beta[m-1]``
    is the norm of the last residual (H Q = Q T + beta[m-1] q_m e_mᵀ, the Ritz-estimate
    factor). ``invariant``: the Krylov space closed (the last residual was at rounding level).
    """

    basis: torch.Tensor
    products: torch.Tensor | None
    alpha: torch.Tensor
    beta: torch.Tensor
    invariant: bool

    @property
    def steps(self) -> int:
        return len(self.alpha)

    def ritz(self, want: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``want`` largest eigenpairs ``(theta (want,), S (m, want))`` of T, descending."""
        return tridiagonal_eigh(self.alpha, self.beta, want)


def tridiagonal_eigh(alpha: torch.Tensor, beta: torch.Tensor, want: int | None = None):
    """The ``want`` largest eigenpairs (descending) of the tridiagonal with diagonal ``alpha``
    (m,) and off-diagonal ``beta[:m-1]``, in float64."""
    m = len(alpha)
    T = torch.diag(alpha) + torch.diag(beta[: m - 1], 1) + torch.diag(beta[: m - 1], -1)
    theta, S = torch.linalg.eigh(T)
    want = m if want is None else want
    return theta.flip(0)[:want], S.flip(1)[:, :want]


def lanczos_tridiagonal(H, v0: torch.Tensor, steps: int, *, keep_products: bool = False,
                        continue_invariant: bool = False, stop=None) -> LanczosBasis:
    """Lanczos with full reorthogonalisation: the kit's one Lanczos kernel.

    Runs up to ``steps`` products ``H q_j`` from ``v0`` (P,) (normalised here) and returns the
    basis and the tridiagonal coefficients (``LanczosBasis``). ``top_eigen``, the tracker and
    ``theory.spectral_density`` all run on it.

    When the Krylov space closes (residual ≤ ``max(10 eps, 1e-10)`` × the largest coefficient):
    stop there (``invariant=True``; Gauss quadrature is then exact), or with
    ``continue_invariant`` go on from a fresh seeded direction orthogonal to the basis (with a
    zero coupling), which an eigensolver needs when the start vector lies in an invariant
    subspace. ``stop(alpha, beta, m, invariant)``, if given, is asked after each step ``m``
    whether to end.
    """
    n = operator_size(H)
    dtype, device = v0.dtype, v0.device
    steps = min(steps, n)
    floor = max(10 * torch.finfo(dtype).eps, 1e-10)
    # One Lanczos vector per row: contiguous writes, and rows are only touched when used.
    Q = torch.empty(steps, n, dtype=dtype, device=device)
    HQ = torch.empty(steps, n, dtype=dtype, device=device) if keep_products else None
    alpha = torch.zeros(steps, dtype=torch.float64)
    beta = torch.zeros(steps, dtype=torch.float64)
    Q[0] = v0 / torch.linalg.vector_norm(v0)
    fresh_seed, invariant, m = 1, False, 0
    for j in range(steps):
        w = apply_operator(H, Q[j])
        if HQ is not None:
            HQ[j] = w
        a = torch.dot(Q[j], w)
        w = w - a * Q[j]
        if j > 0:
            w = w - beta[j - 1].item() * Q[j - 1]
        for _ in range(2):  # full reorthogonalisation; twice is enough (Kahan)
            w = w - Q[: j + 1].T @ (Q[: j + 1] @ w)
        alpha[j] = a.item()
        b = torch.linalg.vector_norm(w).item()
        beta[j] = b
        m = j + 1
        scale = max(alpha[:m].abs().max().item(), beta[:m].max().item(), torch.finfo(dtype).tiny)
        invariant = b <= floor * scale
        if (stop is not None and stop(alpha[:m], beta[:m], m, invariant)) or m == steps:
            break
        if invariant:
            if not continue_invariant:
                break
            w = seeded_block(n, 1, dtype, device, seed=fresh_seed)[:, 0]
            fresh_seed += 1
            for _ in range(2):
                w = w - Q[: j + 1].T @ (Q[: j + 1] @ w)
            b, beta[j] = torch.linalg.vector_norm(w).item(), 0.0
        Q[j + 1] = w / b
    return LanczosBasis(Q[:m], None if HQ is None else HQ[:m], alpha[:m], beta[:m], invariant)


@dataclass(frozen=True)
class LanczosSolve:
    """Top Ritz pairs from ``lanczos_top``: ``values`` (want,), ``vectors`` (P, want),
    ``residuals`` (want,) explicit ``‖Hv − θv‖ / |θ|``, ``products`` (P, want) = H @ vectors,
    ``matvecs`` spent, ``restarts``."""

    values: torch.Tensor
    vectors: torch.Tensor
    residuals: torch.Tensor
    products: torch.Tensor
    matvecs: int
    restarts: int


def lanczos_top(H, k: int, *, tol: float, v0: torch.Tensor | None = None, max_matvecs: int,
                max_basis: int = 200, extra: int = 0) -> LanczosSolve:
    """Top ``k`` (plus ``extra`` unconverged companions) Ritz pairs of ``H`` by restarted Lanczos.

    The products ``H q_j`` are kept, so the residuals are explicit, ``‖H v − θ v‖ / |θ|`` from
    the same products an outside check would compute, at no extra cost: the cheap Ritz estimate
    ``|β s_mi|`` decides when to stop, and the explicit one is what is reported (the estimate
    drops far below rounding level, e.g. to 0 in float32, where the truth is ~1e-6). When the
    basis reaches ``max_basis``, Lanczos restarts from the Ritz vectors weighted towards the
    unconverged ones. Inputs are trusted (``top_eigen`` validates them).
    """
    n = operator_size(H)
    dtype, device = operator_dtype_device(H)
    want = min(k + extra, n)
    max_basis = max(max_basis, want + 2)
    if max_matvecs < want:
        raise ValueError(f"max_matvecs={max_matvecs} is too small to hold k={want} Lanczos vectors")
    q = v0 if v0 is not None else seeded_block(n, 1, dtype, device)[:, 0]
    q = q.to(device, dtype)
    used, restarts = 0, 0
    while True:
        estimates_done, cap = [], min(n, max_basis, max_matvecs - used)

        def stop(alpha, beta, m, invariant):
            if m < want or (m % 2 and not invariant and m < cap):  # every other step, or at the end
                return False
            theta, S = tridiagonal_eigh(alpha, beta, want)
            done = bool((relative_residuals((beta[m - 1] * S[-1, :k]).abs(), theta[:k]) <= tol).all())
            estimates_done.append(done)
            return done

        run = lanczos_tridiagonal(H, q, cap, keep_products=True,
                                  continue_invariant=True, stop=stop)
        used += run.steps
        theta, S = run.ritz(want)
        Sd = S.to(device, dtype)  # the tridiagonal lives on the host; its Ritz data come back
        vectors, HV = run.basis.T @ Sd, run.products.T @ Sd
        values = theta.to(device, dtype)
        res = relative_residuals(torch.linalg.vector_norm(HV - vectors * values, dim=0), values)
        # Stop when converged, out of budget, or when the Ritz estimates say done but the explicit
        # residuals do not (the rounding floor of H @ v: more products cannot lower it).
        said_done = bool(estimates_done and estimates_done[-1])
        if said_done or (res[:k] <= tol).all() or used + want > max_matvecs or run.steps >= n:
            return LanczosSolve(values, vectors, res, HV, used, restarts)
        q = vectors @ res.to(dtype)
        restarts += 1


# ---------------------------------------------------------------------------- LOBPCG
def rayleigh_ritz(B: torch.Tensor, HB: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Ritz pairs of H on span(B) from ``B`` (P, b) and ``HB = H @ B``: ``(theta, C)``
    descending, Ritz vectors ``B @ C``; robust to a nearly dependent ``B``."""
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
        X = orthonormalize(X0.to(device, dtype))
        HX = apply_operator(H, X)
        used = X.shape[1]
    else:
        X, HX, used = X0, HX0, 0
    theta, C = rayleigh_ritz(X, HX)
    X, HX = X @ C, HX @ C
    P = HP = None
    it = 0
    while True:
        R = HX - X * theta
        res = relative_residuals(torch.linalg.vector_norm(R, dim=0), theta)
        if (res[:k] <= tol).all() or used >= max_matvecs:
            break
        active = torch.ones(m, dtype=torch.bool, device=res.device)
        active[:k] = res[:k] > tol  # soft locking of converged wanted pairs
        W = R[:, active]
        W = W - X @ (X.T @ W)
        W = orthonormalize(W)
        if W.shape[1] > max_matvecs - used:
            W = W[:, : max_matvecs - used]
        HW = apply_operator(H, W)
        used += W.shape[1]
        blocks = [X, W] + ([P] if P is not None else [])
        hblocks = [HX, HW] + ([HP] if HP is not None else [])
        B, HB = torch.cat(blocks, 1), torch.cat(hblocks, 1)
        theta_all, C = rayleigh_ritz(B, HB)
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
        cols.append(apply_operator(H, E))
    return torch.cat(cols, dim=1)


def _scipy(H, n, k, tol, v0, dtype, device):
    from scipy.sparse.linalg import LinearOperator, eigsh

    count = [0]
    np_dtype = np.float64 if dtype == torch.float64 else np.float32

    def matmat(x):
        x = np.asarray(x).reshape(n, -1)
        count[0] += x.shape[1]
        V = torch.from_numpy(np.ascontiguousarray(x, dtype=np_dtype)).to(device, dtype)
        return apply_operator(H, V).cpu().numpy()

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
    n = operator_size(H)
    k = check_int_range("k", k, 1, n)
    tol = check_positive("tol", tol)
    method = check_choice("method", method, METHODS)
    oversample = check_int_range("oversample", oversample, 0)
    max_matvecs = check_int_range("max_matvecs", max_matvecs if max_matvecs is not None else max(300, 30 * k), 1)
    dtype, device = operator_dtype_device(H)
    if v0 is not None:
        check_vector_block("v0", v0, n)
    if method == "auto":
        method = "dense" if n <= 1500 else "lanczos"

    if method == "dense":
        M = _dense_matrix(H, n, dtype, device)
        evals, evecs = torch.linalg.eigh((M + M.T) / 2)
        values, vectors = evals.flip(0)[:k], evecs.flip(1)[:, :k]
        residuals = relative_residuals(torch.linalg.vector_norm(M @ vectors - vectors * values, dim=0), values)
        return eigen_result(values, vectors, residuals, 0 if isinstance(H, torch.Tensor) else n, tol, method, 1)

    if method == "scipy":
        if v0 is not None and v0.ndim != 1:
            raise ValueError(f"v0 must have shape ({n},) for method='scipy'; got {tuple(v0.shape)}")
        values, vectors, residuals, _, total = _scipy(H, n, k, tol, v0, dtype, device)
        return eigen_result(values, vectors, residuals, total, tol, method, 1)

    if method == "lanczos":
        if v0 is not None and v0.ndim != 1:
            raise ValueError(f"v0 must have shape ({n},) for method='lanczos'; got {tuple(v0.shape)}")
        solve = lanczos_top(H, k, tol=tol, v0=v0, max_matvecs=max_matvecs, max_basis=max_basis)
        return eigen_result(solve.values, solve.vectors, solve.residuals, solve.matvecs, tol, method,
                            solve.restarts + 1)

    # block
    m = min(k + oversample, n)
    X0 = v0.reshape(n, -1) if v0 is not None else seeded_block(n, m, dtype, device)
    if X0.shape[1] < m:
        X0 = torch.cat([X0.to(device, dtype), seeded_block(n, m - X0.shape[1], dtype, device, seed=1)], 1)
    values, vectors, residuals, used, it, _, _ = _lobpcg(H, n, k, m, tol, X0[:, :m], max_matvecs, dtype, device)
    return eigen_result(values, vectors, residuals, used, tol, method, it)
