"""The browser tests' judgement of plotted axes (``browser_helpers.absurd_axes``) catches the
1e-49 kind of log axis and squashed curves, and passes sensible ones."""
from __future__ import annotations

from browser_helpers import absurd_axes


def _axis(range_, data, type_="linear"):
    return {"axis": "y", "type": type_, "range": range_, "data": data, "title": "training loss"}


def test_a_log_axis_down_to_1e_minus_49_is_absurd():
    assert absurd_axes([_axis([-49, 2], [0.1, 1.2], "log")])


def test_curves_squashed_into_a_sliver_are_absurd():
    assert absurd_axes([_axis([0, 100], [99, 100])])
    assert absurd_axes([_axis([-6, 0.2], [0.12, 1.16], "log")])  # 1 decade of data on a 6.2-decade axis


def test_sensible_axes_pass():
    assert absurd_axes([_axis([-1.0, 0.1], [0.12, 1.16], "log"), _axis([0.78, 1.05], [0.79, 1.04]),
                        _axis([0, 1], None)]) == []


def test_non_finite_ranges_are_absurd():
    assert absurd_axes([_axis([float("nan"), 1], [0, 1])])
    assert absurd_axes([_axis(None, [0, 1])])
