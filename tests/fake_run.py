"""A fake row source with the experiment engine's shape, for widget and browser tests.

Rows have the engine's keys (``step``, ``phase``, ``mode``, ``train_loss``, ``train_acc``,
``alignment_full``, ``update_norm``); SGD and Bulk-SGD keep decreasing after the switch, Dom-SGD
stalls. Bad settings raise ``ValueError`` like ``RunConfig`` does; ``lr > 1`` makes Dom-SGD
diverge (its loss becomes ``inf``). ``delay`` seconds are slept per step so a run takes a
while and can be stopped. Use it as ``load_source("fake_run", ...)`` with ``tests/`` on the path.
"""
from __future__ import annotations

import math
import threading
import time

NUM_PARAMS = 199_210
DEFAULTS = dict(k=10, lr=0.01, batch_size=50, steps=4000, switch="step", switch_step=40, refresh_every=10)


def validate(settings: dict) -> dict:
    s = {**DEFAULTS, **settings}
    if not 1 <= s["k"] < NUM_PARAMS:
        raise ValueError(f"k must be smaller than the number of parameters ({NUM_PARAMS}); got k={s['k']}")
    if not s["lr"] > 0:
        raise ValueError(f"lr must be a finite number > 0, got {s['lr']}")
    for name in ("batch_size", "steps", "refresh_every"):
        if s[name] < 1:
            raise ValueError(f"{name} must be >= 1, got {s[name]}")
    return s


def fake_rows(settings: dict, stop: threading.Event | None = None, *, delay: float = 0.0, log_every: int = 1):
    """The rows of one fake run; returns ``{"status", "message"}`` like the engine's summary."""
    s = validate(settings)
    switch = s["switch_step"] if s["switch"] == "step" else min(s["steps"] // 2, 100)
    losses = {"none": 1.0, "dom": 1.0, "bulk": 1.0}
    for t in range(s["steps"]):
        if stop is not None and stop.is_set():
            return {"status": "stopped", "message": f"stopped at step {t}"}
        if delay:
            time.sleep(delay)
        if t % log_every:
            continue
        if t < switch:
            loss = math.exp(-t / 200)
            losses = dict.fromkeys(losses, loss)
            yield dict(step=t, phase="warmup", mode="none", train_loss=loss, train_acc=1 - loss / 2,
                       alignment_full=min(0.99, t / (switch + 1)), update_norm=s["lr"] * (1 + loss))
            continue
        for mode, rate in (("none", 0.995), ("dom", 0.99999), ("bulk", 0.995)):
            if mode == "dom" and s["lr"] > 1:
                rate = 10.0  # overflows to inf about 300 steps after the switch
            losses[mode] *= rate
            loss = losses[mode]
            yield dict(step=t, phase="main", mode=mode, train_loss=loss, train_acc=1 - min(loss, 1) / 2,
                       alignment_full=0.97 if mode != "bulk" else 0.05, update_norm=s["lr"] * (1 + min(loss, 1)))
    return {"status": "completed", "message": ""}


class FakeSource:
    """A row source (see ``subspace_kit.widgets.sources``) over ``fake_rows``.

    ``cached``: rows of a finished run of the default settings, shown when the page opens."""

    def __init__(self, preset: str = "class", store=None, delay: float = 0.01, cached: bool = True):
        self.preset, self.store, self.delay, self.cached = preset, store, delay, cached

    def defaults(self) -> dict:
        return dict(DEFAULTS)

    def cached_rows(self, settings: dict) -> list[dict]:
        if not self.cached or validate(settings) != validate({}):
            return []
        return list(fake_rows(dict(settings, steps=200)))

    def make_rows(self, settings: dict, stop: threading.Event):
        return fake_rows(settings, stop, delay=self.delay)


def source(**kwargs) -> FakeSource:
    return FakeSource(**kwargs)
