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
part returned instead, a wrong shape, a transposed basis) but never print the expected vector;
``check_alignment(fn)`` does the same for χ_k(v) = ‖Uᵀv‖ / ‖v‖, and ``function_verdict`` for any
function against the kit's own.
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
def _random_basis(P: int, k: int, seed: int):
    """A random orthonormal ``U`` (P, k) and a random ``g`` (P,), float64."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    U, _ = torch.linalg.qr(torch.randn(P, k, generator=gen, dtype=torch.float64))
    return torch.randn(P, generator=gen, dtype=torch.float64), U


def function_verdict(name: str, fn, reference, args: tuple, *, hint: str, mistakes=(), explain=None,
                     rtol: float = 1e-6, atol: float = 1e-9) -> Verdict:
    """Check a student's ``fn(*args)`` against ``reference(*args)`` without printing the expected result.

    ``mistakes``: ``(wrong_function, message)`` pairs, common wrong answers named when matched;
    ``explain(result)``: a sentence on what is wrong with any other result. Numbers and tensors are
    compared with ``rtol``/``atol``; a ``None`` result (the TODO left in place) is "not answered".
    """
    import torch

    tip = f" Hint: {hint}"
    if fn is None:
        return Verdict(name, None, f"not answered yet: write the function.{tip}", False)
    shapes = ", ".join(str(tuple(a.shape)) if hasattr(a, "shape") else type(a).__name__ for a in args)
    try:
        out = fn(*(a.clone() if hasattr(a, "clone") else a for a in args))
    except Exception as exc:  # the student's code: its error is the message, as a hint
        return Verdict(name, False, f"not yet: calling it with arguments of shapes {shapes} raised "
                                    f"{type(exc).__name__}: {exc}.{tip}", False)
    if out is None:
        return Verdict(name, None, f"not answered yet: the function returns None.{tip}", False)
    expected = torch.as_tensor(reference(*args), dtype=torch.float64)
    try:
        out = torch.as_tensor(out, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as exc:
        return Verdict(name, False, f"not yet: it returned a {type(out).__name__}, not a number or tensor "
                                    f"({exc}).{tip}", False)
    if out.shape != expected.shape:
        return Verdict(name, False, f"not yet: it returned shape {tuple(out.shape)}, expected shape "
                                    f"{tuple(expected.shape)}.{tip}", False)
    if torch.allclose(out, expected, rtol=rtol, atol=atol):
        return Verdict(name, True, f"correct: it matches the kit's {getattr(reference, '__name__', 'function')}.",
                       True)
    for wrong, message in mistakes:
        if torch.allclose(out, torch.as_tensor(wrong(*args), dtype=torch.float64), rtol=rtol, atol=atol):
            return Verdict(name, False, f"not yet: {message}{tip}", False)
    why = explain(out) if explain is not None else "the result differs from the expected one."
    return Verdict(name, False, f"not yet: {why}{tip}", False)


PROJECTION_HINT = ("Bulk keeps what is orthogonal to the columns of U: subtract from g its projection "
                   "U (Uᵀ g), with U of shape (P, k) and g of shape (P,).")


def projection_verdict(fn, *, P: int = 40, k: int = 3, seed: int = 0) -> Verdict:
    """Check ``fn(g, U)`` against ``subspace_kit.bulk`` on a random orthonormal ``U`` (P, k) and
    random ``g`` (P,); the text names the mistake without printing the expected vector."""
    import torch

    from .projection import bulk, dominant

    g, U = _random_basis(P, k, seed)

    def leak(out):
        ratio = float(torch.linalg.vector_norm(U.T @ out) / torch.linalg.vector_norm(out).clamp_min(1e-300))
        return f"the result is not orthogonal to the columns of U (‖Uᵀ result‖ / ‖result‖ = {ratio:.2f}, should be 0)."

    return function_verdict(
        "your Bulk projection g − U(Uᵀg)", fn, bulk, (g, U), hint=PROJECTION_HINT, explain=leak,
        mistakes=[(dominant, "that is the dominant part U(Uᵀg), the part Dom-SGD keeps; Bulk keeps the rest."),
                  (lambda g, U: g, "it returns g unchanged.")])


ALIGNMENT_HINT = "χ_k(v) = ‖U Uᵀ v‖ / ‖v‖, and ‖U Uᵀ v‖ = ‖Uᵀ v‖ because the columns of U are orthonormal."


def alignment_verdict(fn, *, P: int = 40, k: int = 3, seed: int = 1) -> Verdict:
    """Check ``fn(v, U)`` against ``subspace_kit.alignment`` (a number in [0, 1]) on random data."""
    import torch

    from .projection import alignment, alignment_squared

    v, U = _random_basis(P, k, seed)
    return function_verdict(
        "your alignment χ_k(v)", fn, alignment, (3.0 * v, U), hint=ALIGNMENT_HINT, rtol=1e-5,
        mistakes=[(alignment_squared, "that is χ_k², the share of the squared norm; take its square root."),
                  (lambda v, U: torch.linalg.vector_norm(U.T @ v), "divide by ‖v‖: χ_k does not depend on the "
                                                                   "length of v.")])


def check_alignment(fn, *, show: bool = True) -> bool | None:
    """Show whether ``fn(v, U)`` computes χ_k(v) = ‖Uᵀv‖ / ‖v‖ (see ``alignment_verdict``)."""
    result = alignment_verdict(fn)
    if show:
        _display(result)
    return result.ok


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
