"""Where the kit keeps things on disk: one module, so a reader finds every location here.

- ``shipped_runs()``: the run store that ships with the kit (precomputed runs and switch-point
  checkpoints), read-only. Its one home in the repository is the top-level ``data/runs``;
  ``pyproject.toml`` maps that folder into the wheel as the package data folder
  ``subspace_kit/shipped_runs``.
- ``kit_home()``: the one per-user folder for everything the kit writes:
  ``$SUBSPACE_KIT_HOME`` if set, else the platform's user data folder
  (``~/.local/share/subspace_kit`` on Linux, ``$XDG_DATA_HOME`` respected;
  ``~/Library/Application Support/subspace_kit`` on macOS; ``%LOCALAPPDATA%\\subspace_kit`` on
  Windows). Never the current folder.
- ``user_store()``: the user's own run store, where new runs are written: ``$SUBSPACE_KIT_RUNS``
  if set, else ``kit_home()/runs``.
- ``data_cache()``: downloaded data sets: ``$SUBSPACE_KIT_DATA`` if set, else ``kit_home()/data``.

Nothing here creates a folder; the code that writes creates what it needs.
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

HOME_ENV = "SUBSPACE_KIT_HOME"
RUNS_ENV = "SUBSPACE_KIT_RUNS"
DATA_ENV = "SUBSPACE_KIT_DATA"
APP_NAME = "subspace_kit"
SHIPPED_FOLDER = "shipped_runs"  # where the wheel puts data/runs, inside the package (pyproject.toml)

_PACKAGE = __name__.rpartition(".")[0]
_CHECKOUT = Path(__file__).resolve().parents[1]


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


def _in_checkout() -> bool:
    """True when this package is imported from a source checkout (plain or editable install)."""
    return (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "data" / "runs").is_dir()


def shipped_runs() -> Path:
    """The shipped run store: read-only, never written by the kit.

    From a source checkout (``PYTHONPATH`` or an editable install) it is the checkout's
    ``data/runs``, the folder the wheel is built from; from an installed wheel it is
    ``subspace_kit/shipped_runs`` inside the installed package, found with ``importlib.resources``.
    """
    # The checkout wins when the package itself lives in one: an editable install maps the same
    # folder, and another install of the kit further down sys.path must not answer for this one.
    if _in_checkout():
        return _CHECKOUT / "data" / "runs"
    installed = resources.files(_PACKAGE).joinpath(SHIPPED_FOLDER)
    return Path(str(installed))


def kit_home() -> Path:
    """The per-user folder for the kit's runs and data (see the module doc)."""
    explicit = _env_path(HOME_ENV)
    if explicit is not None:
        return explicit
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def user_store() -> Path:
    """The user's run store: ``$SUBSPACE_KIT_RUNS`` if set, else ``kit_home()/runs``."""
    return _env_path(RUNS_ENV) or kit_home() / "runs"


def data_cache() -> Path:
    """Downloaded data: ``$SUBSPACE_KIT_DATA`` if set, else ``kit_home()/data``."""
    return _env_path(DATA_ENV) or kit_home() / "data"


def locations() -> dict[str, Path]:
    """Every location by name (for ``subspace-kit where`` and the docs)."""
    return {"shipped runs": shipped_runs(), "kit home": kit_home(), "run store": user_store(),
            "data cache": data_cache()}
