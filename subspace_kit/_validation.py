"""Argument checks at the public boundary: one message style everywhere.

Each check raises ``ValueError`` naming the argument, the value received and what is allowed.
Code inside the package trusts values that passed these checks.
"""
from __future__ import annotations

import math
from typing import Iterable

import torch


def check_int_range(name: str, value, low: int, high: int | None = None) -> int:
    """``low <= value`` (and ``value < high`` when ``high`` is given); returns ``int(value)``."""
    if isinstance(value, bool) or not isinstance(value, (int,)) and not (
        isinstance(value, float) and value.is_integer()
    ):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value >= high):
        allowed = f">= {low}" if high is None else f"in [{low}, {high - 1}]"
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return value


def check_positive(name: str, value, *, allow_zero: bool = False) -> float:
    """A finite real number > 0 (or >= 0 with ``allow_zero``)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        allowed = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {allowed}, got {value}")
    return value


def check_choice(name: str, value, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def check_vector_block(name: str, v: torch.Tensor, size: int) -> torch.Tensor:
    """``v`` of shape ``(size,)`` or ``(size, m)`` with finite entries."""
    if not isinstance(v, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(v).__name__}")
    if v.is_complex():
        raise ValueError(f"{name} must be real; got dtype {v.dtype} (the operator is real symmetric: "
                         "multiply the real and imaginary parts separately)")
    if v.ndim not in (1, 2) or v.shape[0] != size:
        raise ValueError(
            f"{name} must have shape ({size},) or ({size}, m); got {tuple(v.shape)}"
        )
    if not torch.isfinite(v).all():
        raise ValueError(f"{name} has non-finite entries (nan or inf)")
    return v


def check_finite_data(name: str, data: torch.Tensor) -> torch.Tensor:
    """A floating ``data`` tensor has no nan/inf (integer tensors always pass); names the
    first bad sample."""
    if data.is_floating_point() or data.is_complex():
        bad = ~torch.isfinite(data.reshape(len(data), -1)).all(dim=1) if data.ndim else ~torch.isfinite(data)
        if bool(bad.any()):
            first = int(bad.nonzero()[0, 0]) if data.ndim else 0
            raise ValueError(f"{name} has non-finite entries (nan or inf) in {int(bad.sum())} sample(s), "
                             f"the first at index {first}")
    return data


def check_basis(g: torch.Tensor, U: torch.Tensor, *, g_name: str = "g", u_name: str = "U") -> None:
    """``U`` (P, k) and ``g`` (P,) or (P, m), both real tensors, with the same P."""
    for name, t in ((g_name, g), (u_name, U)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.is_complex():
            raise ValueError(f"{name} must be real; got dtype {t.dtype}")
    if U.ndim != 2:
        raise ValueError(f"{u_name} must be a basis of shape (P, k); got shape {tuple(U.shape)}")
    if g.dtype != U.dtype:
        raise ValueError(f"{g_name} and {u_name} must have the same dtype; got {g.dtype} and {U.dtype}")
    if g.ndim not in (1, 2) or g.shape[0] != U.shape[0]:
        raise ValueError(f"{g_name} must have shape ({U.shape[0]},) or ({U.shape[0]}, m) to match "
                         f"{u_name} of shape {tuple(U.shape)}; got {tuple(g.shape)}")
