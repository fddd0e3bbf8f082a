"""Readable messages for the page: what went wrong and what to do, never a traceback.

``RunOutcome`` is how a run ended; ``describe_error`` turns an exception into one sentence;
``message_html`` renders a message for an ``ipywidgets.HTML``.
"""
from __future__ import annotations

import html
from dataclasses import dataclass

STYLES = {
    "info": ("#e8f1fb", "#1f5f9f"),
    "success": ("#e9f6ec", "#2b7a3d"),
    "warning": ("#fff6e0", "#8a5a00"),
    "error": ("#fdecea", "#a12622"),
}


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended.

    ``status``: ``completed``, ``stopped``, ``diverged`` (some curve's loss became non-finite;
    the other curves ran on), ``invalid`` (the settings were rejected) or ``failed`` (any other
    error). ``message``: one readable paragraph. ``rows``: rows received. ``last_step``: the
    largest step received (``None`` if none). ``error``: the exception, for ``invalid`` and
    ``failed``.
    """

    status: str
    message: str
    rows: int = 0
    last_step: int | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("completed", "stopped")


def describe_error(exc: BaseException) -> tuple[str, str]:
    """``(status, message)`` for an exception raised by a run: ``ValueError`` means the
    settings were rejected (its message names the field), anything else is a failure."""
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, ValueError):
        return "invalid", f"Invalid setting: {text}. Change it and press Run again."
    if isinstance(exc, ImportError):
        return "failed", f"A package this run needs is missing: {text}."
    return "failed", f"The run stopped with an error ({type(exc).__name__}): {text}"


def message_html(text: str, kind: str = "info") -> str:
    """``text`` (plain, escaped here) in a coloured box; ``""`` clears the message."""
    if not text:
        return ""
    background, colour = STYLES.get(kind, STYLES["info"])
    return (f'<div class="subspace-kit-message subspace-kit-{kind}" role="status" style="background:{background};'
            f'color:{colour};border-left:4px solid {colour};padding:6px 10px;margin:4px 0;'
            f'white-space:pre-wrap">{html.escape(text)}</div>')
