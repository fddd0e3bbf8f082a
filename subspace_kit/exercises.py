"""Self-checks for notebook exercises that never give the answer away.

``check("name", answer, expected, rtol=0.05, hint="…")`` compares a student's value with the
expected one and shows a one-line verdict (HTML in a notebook, text elsewhere):

- ``answer is None`` (not done yet): says so, with the tolerance and the hint; "Run all" never
  stops on it;
- a wrong answer: "not yet", whether it is too high or too low, the tolerance and the hint;
- a right answer: "correct", and only now the expected value;
- ``show_solution=True``: the expected value, whatever the answer (the student asked for it).

``check_projection(fn)`` checks a student's ``fn(g, U)`` = g − U(Uᵀg) (the Bulk projection)
against ``subspace_kit.bulk`` on random data, with hints that name what is wrong (the dominant
part returned instead, a wrong shape, a transposed basis) but never print the expected vector.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """What a check says: ``ok`` is ``True`` (right), ``False`` (not yet) or ``None`` (not answered);
    ``text`` is the line shown; ``revealed`` says whether ``text`` contains the expected value."""

    name: str
    ok: bool | None
    text: str
    revealed: bool


def _close(a, b, rtol: float, atol: float) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=rtol, abs_tol=atol)
    except (TypeError, ValueError):
        return a == b


def _fmt(x) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def _tolerance(rtol: float, atol: float) -> str:
    parts = ([f"{rtol:.3g} relative ({rtol:.1%})"] if rtol else []) + ([f"{atol:.3g} absolute"] if atol else [])
    return "tolerance " + (" or ".join(parts) if parts else "exact")


def verdict(name: str, answer, expected, *, rtol: float = 0.05, atol: float = 0.0, hint: str | None = None,
            show_solution: bool = False) -> Verdict:
    """The verdict of ``check`` without showing it (for tests and other front ends)."""
    if rtol < 0 or atol < 0:
        raise ValueError(f"rtol and atol must be >= 0, got rtol={rtol}, atol={atol}")
    tip = f" Hint: {hint}" if hint else ""
    if show_solution:
        return Verdict(name, None if answer is None else _close(answer, expected, rtol, atol),
                       f"solution: {_fmt(expected)}", True)
    if answer is None:
        return Verdict(name, None, f"not answered yet: replace None with your value ({_tolerance(rtol, atol)}).{tip}",
                       False)
    if _close(answer, expected, rtol, atol):
        return Verdict(name, True, f"correct: {_fmt(answer)} (expected {_fmt(expected)}).", True)
    direction = ""
    try:
        direction = " (too high)" if float(answer) > float(expected) else " (too low)"
    except (TypeError, ValueError):
        pass
    return Verdict(name, False, f"not yet: {_fmt(answer)} is not within the {_tolerance(rtol, atol)}{direction}.{tip}",
                   False)


def check(name: str, answer, expected, *, rtol: float = 0.05, atol: float = 0.0, hint: str | None = None,
          show_solution: bool = False, show: bool = True) -> bool | None:
    """Compare ``answer`` with ``expected`` (numbers within ``rtol``/``atol``, else equality) and
    show the verdict; the expected value appears only once the answer is right or with
    ``show_solution=True``. Returns ``True``, ``False`` or ``None`` (not answered)."""
    result = verdict(name, answer, expected, rtol=rtol, atol=atol, hint=hint, show_solution=show_solution)
    if show:
        _display(result)
    return result.ok


# ---------------------------------------------------------------------------- code exercises
PROJECTION_HINT = ("Bulk keeps what is orthogonal to the columns of U: subtract from g its projection "
                   "U (Uᵀ g), with U of shape (P, k) and g of shape (P,).")


def projection_verdict(fn, *, P: int = 40, k: int = 3, seed: int = 0) -> Verdict:
    """Check ``fn(g, U)`` against ``subspace_kit.bulk`` on a random orthonormal ``U`` (P, k) and
    random ``g`` (P,); the text names the mistake without printing the expected vector."""
    import torch

    from .projection import bulk, dominant

    name = "your Bulk projection g − U(Uᵀg)"
    if fn is None:
        return Verdict(name, None, f"not answered yet: write the function. Hint: {PROJECTION_HINT}", False)
    gen = torch.Generator().manual_seed(seed)
    U, _ = torch.linalg.qr(torch.randn(P, k, generator=gen, dtype=torch.float64))
    g = torch.randn(P, generator=gen, dtype=torch.float64)
    try:
        out = fn(g.clone(), U.clone())
    except Exception as exc:  # the student's code: its error is the message, as a hint
        return Verdict(name, False, f"not yet: calling it with g of shape ({P},) and U of shape ({P}, {k}) raised "
                                    f"{type(exc).__name__}: {exc}. Hint: {PROJECTION_HINT}", False)
    if out is None:  # the TODO still in place
        return Verdict(name, None, f"not answered yet: the function returns None. Hint: {PROJECTION_HINT}", False)
    try:
        out = torch.as_tensor(out, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as exc:
        return Verdict(name, False, f"not yet: it returned a {type(out).__name__}, not a tensor ({exc}). "
                                    f"Hint: {PROJECTION_HINT}", False)
    if out.shape != g.shape:
        return Verdict(name, False, f"not yet: it returned shape {tuple(out.shape)}, expected a vector like g, "
                                    f"shape ({P},). Hint: {PROJECTION_HINT}", False)
    if torch.allclose(out, bulk(g, U), rtol=1e-6, atol=1e-9):
        return Verdict(name, True, "correct: it matches subspace_kit.bulk, and Uᵀ(result) = 0.", True)
    if torch.allclose(out, dominant(g, U), rtol=1e-6, atol=1e-9):
        why = "that is the dominant part U(Uᵀg), the part Dom-SGD keeps; Bulk keeps the rest."
    elif torch.allclose(out, g, rtol=1e-6, atol=1e-9):
        why = "it returns g unchanged."
    else:
        leak = float(torch.linalg.vector_norm(U.T @ out) / torch.linalg.vector_norm(out).clamp_min(1e-300))
        why = f"the result is not orthogonal to the columns of U (‖Uᵀ result‖ / ‖result‖ = {leak:.2f}, should be 0)."
    return Verdict(name, False, f"not yet: {why} Hint: {PROJECTION_HINT}", False)


def vector_with_alignment(chi: float, *, P: int = 40, k: int = 3, seed: int = 0):
    """``(g, U)``: a random orthonormal ``U`` (P, k) and a unit vector ``g`` (P,) with
    χ_k(g) = ‖U Uᵀ g‖ / ‖g‖ = ``chi`` exactly (for exercises that measure with the kit)."""
    import torch

    if not 0 <= chi <= 1:
        raise ValueError(f"chi must be in [0, 1], got {chi}")
    gen = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(P, k + 1, generator=gen, dtype=torch.float64))
    U, outside = Q[:, :k], Q[:, k]
    inside = U @ torch.randn(k, generator=gen, dtype=torch.float64)
    g = chi * inside / torch.linalg.vector_norm(inside) + math.sqrt(1 - chi**2) * outside
    return g, U


def check_projection(fn, *, show: bool = True) -> bool | None:
    """Show whether ``fn(g, U)`` computes the Bulk projection g − U(Uᵀg) (see ``projection_verdict``)."""
    result = projection_verdict(fn)
    if show:
        _display(result)
    return result.ok


# ---------------------------------------------------------------------------- display
def _display(result: Verdict) -> None:
    color = {True: "#2ca02c", False: "#d62728", None: "#7f7f7f"}[result.ok]
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
        if get_ipython() is None:
            raise ImportError
        display(HTML(f"<div class='subspace-kit-check'><b>{html.escape(result.name)}</b>: "
                     f"<span style='color:{color};font-weight:bold'>{html.escape(result.text)}</span></div>"))
    except ImportError:
        print(f"{result.name}: {result.text}")
