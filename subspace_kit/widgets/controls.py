"""Input widgets for the main experiment's settings, named after ``RunConfig`` fields.

Plain text boxes rather than sliders: a reader can type any value, and one the engine rejects
(``k`` larger than the model allows, a negative step size) comes back as a readable message.
"""
from __future__ import annotations

import ipywidgets as widgets

# field -> (label, widget class, help); the order is the order on the page
FIELDS = {
    "k": ("k (subspace dim.)", widgets.IntText, "dimension of the dominant subspace (top-k Hessian eigenvectors)"),
    "lr": ("learning rate η", widgets.FloatText, "step size of SGD and of its Dom/Bulk versions"),
    "batch_size": ("batch size", widgets.IntText, "samples per minibatch"),
    "steps": ("steps", widgets.IntText, "total steps, the part before the switch included"),
    "switch": ("switch", widgets.Dropdown, "when the three modes start from the same point"),
    "switch_step": ("switch step", widgets.IntText, "the step of the switch when 'switch' is 'at a fixed step'"),
    "refresh_every": ("refresh every", widgets.IntText, "steps between recomputations of the dominant subspace"),
}
SWITCH_OPTIONS = [("at a fixed step", "step"), ("paper's rule (χ EMA > 0.95)", "rule")]


def experiment_controls(defaults: dict) -> dict[str, widgets.ValueWidget]:
    """One input per known field of ``defaults`` (others are ignored), valued from it.

    Each widget carries the CSS class ``subspace-kit-control-<field>`` (for tests and styling).
    """
    controls = {}
    for name, (label, cls, help_text) in FIELDS.items():
        if name not in defaults:
            continue
        kwargs = dict(description=label, value=defaults[name], tooltip=help_text,
                      style={"description_width": "initial"}, layout=widgets.Layout(width="auto"))
        if cls is widgets.Dropdown:
            kwargs["options"] = SWITCH_OPTIONS
        w = cls(**kwargs)
        w.add_class(f"subspace-kit-control-{name}")
        controls[name] = w
    return controls
