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
    if v.ndim not in (1, 2) or v.shape[0] != size:
        raise ValueError(
            f"{name} must have shape ({size},) or ({size}, m); got {tuple(v.shape)}"
        )
    if not torch.isfinite(v).all():
        raise ValueError(f"{name} has non-finite entries (nan or inf)")
    return v
