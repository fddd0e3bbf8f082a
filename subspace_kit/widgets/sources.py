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
    """The experiment engine as a row source: ``preset`` plus the settings as overrides, runs
    kept in the run store at ``store`` (a completed run is read back at once, a stopped one
    resumes)."""

    def __init__(self, preset: str = "class", store="runs", fields=CONTROL_FIELDS):
        from ..experiment import RunConfig  # noqa: F401  (fail here, readably, if the engine is absent)

        self.preset, self.store, self.fields = preset, store, tuple(fields)

    def config(self, settings: dict):
        from ..experiment import RunConfig

        return RunConfig.preset(self.preset, **settings)

    def defaults(self) -> dict:
        cfg = self.config({})
        return {name: getattr(cfg, name) for name in self.fields}

    def cached_rows(self, settings: dict) -> list[dict]:
        from ..experiment import RunStore

        try:
            result = RunStore(self.store).load(self.config(settings))
        except ValueError:  # settings the engine rejects have nothing cached
            return []
        return list(result.rows) if result is not None else []

    def make_rows(self, settings: dict, stop: threading.Event) -> Iterator[dict]:
        """Rows of the run for ``settings``; a stopped run's stored rows come first, then the
        resumed run's. Returns the store's ``{"status", "message"}`` for the run."""
        from ..experiment import RunStore, iter_run

        cfg = self.config(settings)
        store = RunStore(self.store)
        before = store.load(cfg)
        if before is not None and before.status != "completed":
            yield from before.rows  # iter_run resumes without repeating them
        yield from iter_run(cfg, store=store, stop=stop)
        after = store.load(cfg)
        summary = after.summary if after is not None else {}
        return {"status": summary.get("status"), "message": summary.get("message", "")}


def load_source(spec: str | None = None, **kwargs):
    """A row source: ``None`` for the kit's engine (``EngineSource(**kwargs)``), or
    ``"module:factory"`` (``"module"`` means ``"module:source"``), called with ``kwargs``."""
    if spec is None:
        return EngineSource(**kwargs)
    module_name, _, attr = spec.partition(":")
    factory = getattr(importlib.import_module(module_name), attr or "source")
    return factory(**kwargs)
