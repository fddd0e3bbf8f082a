"""Split a vector into its dominant and bulk parts for an orthonormal basis ``U`` (P, k).

dominant(g) = U Uᵀ g,  bulk(g) = g − U Uᵀ g,  interpolate = α·dominant + β·bulk,
alignment χ_k(g) = ‖U Uᵀ g‖ / ‖g‖ ∈ [0, 1]  (Gur-Ari et al. report its square,
``alignment_squared``).
"""
from __future__ import annotations

import torch

from ._validation import check_basis


def dominant(g: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
    """Projection of ``g`` (P,) (or each column of ``g`` (P, m)) onto span(U), U (P, k)."""
    check_basis(g, U)
    return U @ (U.T @ g)


def bulk(g: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
    """The part of ``g`` orthogonal to span(U)."""
    return g - dominant(g, U)


def interpolate(g: torch.Tensor, U: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """``alpha * dominant(g) + beta * bulk(g)``: (1, 1) is g, (1, 0) Dom, (0, 1) Bulk."""
    d = dominant(g, U)
    return alpha * d + beta * (g - d)


def alignment(g: torch.Tensor, U: torch.Tensor) -> float:
    """χ_k(g) = ‖U Uᵀ g‖ / ‖g‖ in [0, 1] for ``g`` (P,) and ``U`` (P, k); 0 for a zero vector."""
    check_basis(g, U)
    if g.ndim != 1:
        raise ValueError(f"g must be one vector of shape ({U.shape[0]},); got {tuple(g.shape)}")
    norm = torch.linalg.vector_norm(g)
    if norm == 0:
        return 0.0
    return float((torch.linalg.vector_norm(U.T @ g) / norm).clamp(0.0, 1.0))


def alignment_squared(g: torch.Tensor, U: torch.Tensor) -> float:
    """χ_k(g)² = ‖U Uᵀ g‖² / ‖g‖², the fraction of ‖g‖² in the dominant subspace."""
    return alignment(g, U) ** 2
