"""What the kit means by a symmetric operator, declared once.

Every eigensolver and spectral tool takes an ``Operator``: anything with ``H @ V`` for a vector
``(P,)`` or a block ``(P, m)``, a ``.shape`` ``(P, P)``, and optionally ``.dtype`` and
``.device`` (a plain dense tensor qualifies; so do ``HessianOperator`` and the Gauss-Newton
operator). ``operator_size`` and ``operator_dtype_device`` read those attributes with one
message for a wrong shape.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Operator(Protocol):
    """A symmetric linear operator ``(P, P)``: ``H @ v`` for ``v`` of shape ``(P,)`` or ``(P, m)``."""

    shape: tuple[int, int]
    dtype: torch.dtype
    device: torch.device

    def __matmul__(self, v: torch.Tensor) -> torch.Tensor: ...


def operator_size(H) -> int:
    """``P`` of a square operator with ``.shape == (P, P)``; ``ValueError`` otherwise."""
    shape = getattr(H, "shape", None)
    if shape is None or len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"H must be a square operator with .shape (P, P); got shape {shape}")
    return int(shape[0])


def operator_dtype_device(H) -> tuple[torch.dtype, torch.device]:
    """The operator's ``(dtype, device)``; float32 on the CPU when it does not say."""
    return getattr(H, "dtype", torch.float32), getattr(H, "device", torch.device("cpu"))
