"""Figures that survive export: a static PNG beside every interactive plotly figure.

nbconvert (HTML, PDF), GitHub and other viewers cannot draw plotly's JSON output, and plotly's
own static export needs kaleido (and a browser). ``to_matplotlib`` redraws a plotly figure's
line and marker traces with matplotlib instead (subplots by their domains, log axes, axis
titles, lines such as the switch marker, the legend), so no browser is needed:

- ``show(fig)`` displays one output holding both the plotly figure and a PNG: nbconvert, GitHub
  and PDF show the PNG; in JupyterLab and Voila plotly's own renderer shows the PNG at once and
  swaps in the interactive figure when the pointer comes over it;
- ``show_snapshot(obj)`` leaves a static copy of a live widget's figure (``LiveCurves``,
  ``RunPanel`` or ``FigureWidget``), folded under a "static copy" line, for exports.

Traces other than scatter lines/markers (contours, heatmaps) are left out of the static copy.
"""
from __future__ import annotations

import base64
import html
import io
import json
import re

DASHES = {"dash": (0, (5, 3)), "dot": (0, (1, 2)), "dashdot": (0, (5, 2, 1, 2)), "longdash": (0, (8, 3))}


def _text(value) -> str:
    """Plotly rich text (``χ<sub>k</sub>``) as plain text (``χ_k``)."""
    if value is None:
        return ""
    text = str(getattr(value, "text", value) or "")
    text = re.sub(r"<sub>(.*?)</sub>", r"_\1", text)
    text = re.sub(r"<sup>(.*?)</sup>", r"^\1", text)
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def _axis(layout, name: str):
    """Layout axis object for ``"x"``/``"x2"``/``"y3"``."""
    return layout[name[0] + "axis" + name[1:]]


def _domain(axis) -> tuple[float, float]:
    dom = axis.domain
    return (float(dom[0]), float(dom[1])) if dom is not None else (0.0, 1.0)


def _color(value, default="#333333"):
    """A plotly colour string matplotlib understands (``rgba(r,g,b,a)`` converted)."""
    if not isinstance(value, str):
        return default
    m = re.match(r"rgba?\(([^)]*)\)", value.replace(" ", ""))
    if m:
        parts = [float(p) for p in m.group(1).split(",")]
        rgb = [p / 255 for p in parts[:3]]
        return (*rgb, parts[3] if len(parts) > 3 else 1.0)
    return value


def _make_axes(mfig, layout, pairs, margins):
    """One matplotlib axes per (xaxis, yaxis) pair, placed at the plotly domains."""
    left, right, bottom, top = margins
    axes = {}
    for xa, ya in pairs:
        (x0, x1), (y0, y1) = _domain(_axis(layout, xa)), _domain(_axis(layout, ya))
        rect = (left + x0 * (right - left), bottom + y0 * (top - bottom),
                (x1 - x0) * (right - left), (y1 - y0) * (top - bottom))
        ax = mfig.add_axes(rect)
        for name, setter, scale in ((xa, ax.set_xlabel, ax.set_xscale), (ya, ax.set_ylabel, ax.set_yscale)):
            axis = _axis(layout, name)
            setter(_text(axis.title))
            if axis.type == "log":
                scale("log")
        yaxis = _axis(layout, ya)
        if yaxis.range is not None and yaxis.type != "log":
            ax.set_ylim(*yaxis.range)
        if yaxis.type == "log" and yaxis.tickvals:
            ax.set_yticks(list(yaxis.tickvals), [str(t) for t in (yaxis.ticktext or yaxis.tickvals)])
            ax.minorticks_off()
        ax.grid(alpha=0.25)
        axes[(xa, ya)] = ax
    return axes


def _draw_trace(ax, trace) -> bool:
    x = list(trace.x) if trace.x is not None else []  # numpy arrays have no truth value
    y = list(trace.y) if trace.y is not None else []
    if not y:
        return False
    if not x:
        x = list(range(len(y)))
    mode = trace.mode or "lines"
    line = trace.line or {}
    color = _color(line.color if line.color else (trace.marker.color if trace.marker else None))
    kwargs = dict(color=color, label=_text(trace.name) or None, alpha=trace.opacity if trace.opacity else 1.0)
    if "lines" in mode:
        ax.plot(x, y, lw=line.width or 2, ls=DASHES.get(line.dash, "-"), marker="o" if "markers" in mode else None,
                ms=3, **kwargs)
    else:
        ax.plot(x, y, ls="none", marker="o", ms=4, **kwargs)
    return True


def _draw_shape(axes, shape) -> None:
    """Vertical and horizontal lines (the switch marker, a reference level) on their axes."""
    if shape.type != "line":
        return
    xref, yref = str(shape.xref or "x"), str(shape.yref or "y")
    for (xa, ya), ax in axes.items():
        x_here = xref.split(" ")[0] == xa or xref == "paper"
        y_here = yref.split(" ")[0] == ya or yref == "paper"
        if not (x_here and y_here):
            continue
        style = dict(color=_color((shape.line or {}).color, "#555555"), lw=1,
                     ls=DASHES.get((shape.line or {}).dash, "-"))
        if shape.x0 == shape.x1 and "domain" not in xref and xref != "paper":
            ax.axvline(shape.x0, **style)
        elif shape.y0 == shape.y1 and "domain" not in yref and yref != "paper":
            ax.axhline(shape.y0, **style)


def _readable_log_ticks(ax) -> None:
    """1-2-5 ticks labelled ``0.2``, not ``2×10⁻¹``, on a log y axis without set ticks."""
    from matplotlib.ticker import FixedLocator, NullLocator

    from ..experiment.figures import log_ticks, tick_text

    if ax.get_yscale() != "log" or isinstance(ax.yaxis.get_major_locator(), FixedLocator):
        return
    values = [float(v) for line in ax.get_lines() for v in line.get_ydata()
              if isinstance(v, (int, float)) or hasattr(v, "dtype")]
    values = [v for v in values if v > 0 and v == v]
    if values:
        ticks = log_ticks(min(values), max(values))
        ax.yaxis.set_major_locator(FixedLocator(ticks))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.set_yticklabels([tick_text(t) for t in ticks])


def to_matplotlib(fig, *, width_in: float | None = None, height_in: float | None = None):
    """A matplotlib ``Figure`` drawing the scatter traces of the plotly figure ``fig``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layout = fig.layout
    width_in = width_in or (layout.width or 1000) / 100
    height_in = height_in or (layout.height or 450) / 100
    mfig = plt.figure(figsize=(width_in, height_in))
    traces = [t for t in fig.data if t.type in ("scatter", "scattergl") and t.visible not in (False, "legendonly")]
    pairs = list(dict.fromkeys((t.xaxis or "x", t.yaxis or "y") for t in traces)) or [("x", "y")]
    top = 1 - (0.6 if _text(layout.title) else 0.35) / height_in  # inches kept for the title, the legend
    margins = (0.08, 0.98, min(0.35, 0.95 / height_in), top)
    axes = _make_axes(mfig, layout, pairs, margins)
    handles = {}
    for trace in traces:
        ax = axes[(trace.xaxis or "x", trace.yaxis or "y")]
        if _draw_trace(ax, trace) and trace.showlegend is not False and trace.name:
            handles.setdefault(_text(trace.name), ax.get_lines()[-1])
    for shape in layout.shapes or ():
        _draw_shape(axes, shape)
    for ax in axes.values():
        _readable_log_ticks(ax)
    left, right, bottom, top = margins
    for note in layout.annotations or ():  # subplot titles sit in paper coordinates
        if note.xref == "paper" and note.yref == "paper" and note.text:
            mfig.text(left + note.x * (right - left), bottom + note.y * (top - bottom) + 0.01, _text(note.text),
                      ha="center", va="bottom", fontsize=10)
    if _text(layout.title):
        mfig.suptitle(_text(layout.title), x=0.01, ha="left", fontsize=11)
    if handles:
        mfig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(len(handles), 5),
                    frameon=False, fontsize=9)
    return mfig


def png_bytes(fig, *, dpi: int = 100) -> bytes:
    """PNG of ``to_matplotlib(fig)``."""
    import matplotlib.pyplot as plt

    mfig = to_matplotlib(fig)
    buf = io.BytesIO()
    mfig.savefig(buf, format="png", dpi=dpi)
    plt.close(mfig)
    return buf.getvalue()


def _figure_of(obj):
    """The plotly figure inside ``obj`` (a figure, ``LiveCurves``, ``RunPanel`` or ``ToyPanel``)."""
    for attr in ("curves", "figure"):
        if hasattr(obj, attr) and not hasattr(obj, "to_plotly_json"):
            return _figure_of(getattr(obj, attr))
    if not hasattr(obj, "to_plotly_json"):
        raise TypeError(f"expected a plotly figure, LiveCurves or RunPanel, got {type(obj).__name__}")
    return obj


def bundle(fig) -> dict:
    """The display bundle of ``show``: plotly's JSON, a PNG and a line of text."""
    data = json.loads(fig.to_json())
    return {"application/vnd.plotly.v1+json": {"data": data.get("data", []), "layout": data.get("layout", {}),
                                               "config": {}},
            "image/png": base64.b64encode(png_bytes(fig)).decode(),
            "text/plain": f"<figure: {_text(fig.layout.title) or 'plotly figure'}>"}


def show(fig) -> None:
    """Display ``fig`` interactively where plotly can draw, with a static PNG for exports."""
    from IPython.display import display

    display(bundle(_figure_of(fig)), raw=True)


def show_snapshot(obj, label: str = "static copy of the figure above (for print and export)") -> None:
    """Leave a folded static PNG of a live figure (``LiveCurves``, ``RunPanel``, ``FigureWidget``)
    in the output: the widget itself does not survive nbconvert, GitHub or PDF."""
    from IPython.display import HTML, display

    png = base64.b64encode(png_bytes(_figure_of(obj))).decode()
    display(HTML(f"<details class='subspace-kit-snapshot'><summary>{html.escape(label)}</summary>"
                 f"<img alt='{html.escape(label)}' src='data:image/png;base64,{png}'/></details>"))
