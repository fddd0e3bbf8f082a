"""Self-checks for notebook exercises: the student's value beside the expected one.

``check("name", answer, expected, rtol=0.05)`` shows a small table (HTML in a notebook, text
elsewhere) with both values and a verdict, and returns ``True``/``False``. ``answer = None``
(the exercise not yet done) says so instead of failing, so "Run all" never stops on it.
"""
from __future__ import annotations

import math


def _close(a, b, rtol: float, atol: float) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=rtol, abs_tol=atol)
    except (TypeError, ValueError):
        return a == b


def check(name: str, answer, expected, *, rtol: float = 0.05, atol: float = 0.0, show: bool = True) -> bool | None:
    """Compare ``answer`` with ``expected`` (numbers within ``rtol``/``atol``, else equality)."""
    if answer is None:
        verdict, ok = "not answered yet: replace None with your value", None
    else:
        ok = _close(answer, expected, rtol, atol)
        verdict = "correct" if ok else f"not yet (tolerance {rtol:.0%} relative)"
    if show:
        _display(name, answer, expected, verdict, ok)
    return ok


def _fmt(x) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def _display(name, answer, expected, verdict, ok) -> None:
    color = {True: "#2ca02c", False: "#d62728", None: "#7f7f7f"}[ok]
    text = f"{name}: your value {_fmt(answer)} | expected {_fmt(expected)} | {verdict}"
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
        if get_ipython() is None:
            raise ImportError
        display(HTML(
            f"<table><tr><th>{name}</th><th>your value</th><th>expected value</th><th></th></tr>"
            f"<tr><td></td><td>{_fmt(answer)}</td><td>{_fmt(expected)}</td>"
            f"<td style='color:{color};font-weight:bold'>{verdict}</td></tr></table>"))
    except ImportError:
        print(text)
