"""Where a dashboard's rows come from: the kit's experiment engine, or any object like it.

A *row source* has three methods:

- ``defaults() -> dict``: the settings the controls start from (``RunConfig`` field names);
- ``make_rows(settings, stop) -> iterator of rows``: one run, stoppable through the
  ``threading.Event`` ``stop``; as a generator it may ``return`` ``{"status", "message"}``;
- ``cached_rows(settings) -> list``: rows already on disk for these settings (``[]`` if none).

``EngineSource`` answers them with ``subspace_kit.experiment`` (presets, ``iter_run`` and the run
store). ``load_source("module:factory")`` builds another one, e.g. your own engine or a fake in
tests.
"""
from __future__ import annotations

import importlib
import threading
from typing import Iterator

CONTROL_FIELDS = ("k", "lr", "batch_size", "steps", "switch", "switch_step", "refresh_every")


class EngineSource:
    """The experiment engine as a row source: ``preset`` plus the settings as overrides.

    New runs go to the run store ``store`` (``None``: ``paths.user_store()``); runs are read
    from it and from ``shipped`` (``None``: ``paths.shipped_runs()``), so the kit's precomputed
    runs are drawn whatever the working folder. A completed run is read back at once, a
    stopped one resumes.
    """

    shipped = None  # a subclass that sets up its own stores reads no shipped runs through this class

    def __init__(self, preset: str = "class", store=None, fields=CONTROL_FIELDS, shipped=None):
        from ..experiment import RunConfig  # noqa: F401  (fail here, readably, if the engine is absent)
        from .. import paths

        self.preset, self.fields = preset, tuple(fields)
        self.store = paths.user_store() if store is None else store
        self.shipped = paths.shipped_runs() if shipped is None else shipped

    def config(self, settings: dict):
        from ..experiment import RunConfig

        return RunConfig.preset(self.preset, **settings)

    def defaults(self) -> dict:
        cfg = self.config({})
        return {name: getattr(cfg, name) for name in self.fields}

    def stored(self, settings: dict):
        """The stored run for ``settings``: the user's store first, then the shipped one (``None``
        if neither has it or the engine rejects the settings)."""
        from ..experiment import RunStore

        try:
            cfg = self.config(settings)
        except ValueError:  # settings the engine rejects have nothing stored
            return None
        for root in (self.store, self.shipped):
            result = RunStore(root).load(cfg) if root is not None else None
            if result is not None:
                return result
        return None

    def cached_rows(self, settings: dict) -> list[dict]:
        result = self.stored(settings)
        return list(result.rows) if result is not None else []

    def make_rows(self, settings: dict, stop: threading.Event) -> Iterator[dict]:
        """Rows of the run for ``settings``, each ``(phase, mode, step)`` once: first what is
        already known (a stopped run's stored rows, or the shipped run's shared history before
        the switch, drawn at once), then the engine's. Returns the store's ``{"status", "message"}``."""
        from ..experiment import RunStore, iter_run

        cfg = self.config(settings)
        store = RunStore(self.store)
        before = store.load(cfg)
        if before is not None:
            known = before.rows  # a finished run is answered by iter_run itself; a stopped one resumes
        else:
            shipped = RunStore(self.shipped).load(cfg) if self.shipped is not None else None
            known = [r for r in shipped.rows if r["phase"] == "warmup"] if shipped is not None else []
        seen = set()
        for row in known:
            seen.add(row_key(row))
            yield row
        for row in iter_run(cfg, store=store, stop=stop):
            if row_key(row) not in seen:  # the engine may replay rows shown above: once is enough
                yield row
        after = store.load(cfg)
        summary = after.summary if after is not None else {}
        return {"status": summary.get("status"), "message": summary.get("message", "")}


def row_key(row: dict) -> tuple:
    """What identifies a logged row: ``(phase, mode, step)``."""
    return row.get("phase"), row.get("mode"), row.get("step")


def load_source(spec: str | None = None, **kwargs):
    """A row source: ``None`` for the kit's engine (``EngineSource(**kwargs)``), or
    ``"module:factory"`` (``"module"`` means ``"module:source"``), called with ``kwargs``."""
    if spec is None:
        return EngineSource(**kwargs)
    module_name, _, attr = spec.partition(":")
    factory = getattr(importlib.import_module(module_name), attr or "source")
    return factory(**kwargs)
