"""Principal angles between two subspaces: how far apart two dominant subspaces are."""
from __future__ import annotations

import torch


def principal_angles(U: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """Sines of the principal angles between span(U) and span(V), largest first.

    ``U`` (P, p) and ``V`` (P, q) need not be orthonormal (their columns are orthonormalised
    with QR). Returns ``min(p, q)`` sines in [0, 1]: all 0 when one span contains the other,
    the largest is 1 when some direction of the smaller span is orthogonal to the larger one.
    Computed as the singular values of ``(I − Q_U Q_Uᵀ) Q_V`` (accurate for small angles, where
    ``√(1 − cos²)`` is not).
    """
    for name, M in (("U", U), ("V", V)):
        if not isinstance(M, torch.Tensor) or M.ndim != 2 or M.shape[1] < 1:
            raise ValueError(f"{name} must be a (P, k) tensor with k >= 1, got "
                             f"{tuple(M.shape) if isinstance(M, torch.Tensor) else type(M).__name__}")
    if U.shape[0] != V.shape[0]:
        raise ValueError(f"U and V must have the same number of rows; got {U.shape[0]} and {V.shape[0]}")
    dtype = torch.promote_types(U.dtype, V.dtype)
    Qu, Qv = torch.linalg.qr(U.to(dtype))[0], torch.linalg.qr(V.to(dtype))[0]
    if Qv.shape[1] > Qu.shape[1]:
        Qu, Qv = Qv, Qu
    return torch.linalg.svdvals(Qv - Qu @ (Qu.T @ Qv)).clamp(0.0, 1.0)


def largest_sine(U: torch.Tensor, V: torch.Tensor) -> float:
    """sin of the largest principal angle between span(U) and span(V): how far apart two
    subspaces of the same dimension are (0: the same, 1: some direction orthogonal)."""
    return float(principal_angles(U, V)[0])
