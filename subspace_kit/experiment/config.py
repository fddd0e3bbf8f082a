"""Run configuration: every knob of one experiment, validated once, hashed into a store key.

``RunConfig.preset("class", lr=0.02)`` starts from a named preset and overrides fields;
``RunConfig.from_dict(d)`` rejects unknown keys by name. The config (plus the kit's version of
the protocol, ``PROTOCOL_VERSION``) fully determines the run: same config and seed, same
numbers on the same machine.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
from dataclasses import dataclass, fields

import numpy as np
import torch

from .._validation import check_choice, check_int_range, check_positive

PROTOCOL_VERSION = 1  # bump when a change alters the numbers a config produces

OPTIMIZERS = ("sgd", "gd", "sam", "momentum", "adam")
MODES = ("none", "dom", "bulk", "interp")
PROJECT_ON = ("update", "gradient")
DATA_SOURCES = ("auto", "glue", "substitute")  # sst2-1k only; see datasets/sst2.py
# Fields added after protocol 1 stay out of the hash while at their default, so the keys of
# existing run stores (data/runs) do not change.
_LATE_FIELDS = {"data_source": "auto", "refresh_method": "full", "refresh_columns": 2, "certify_every": 100}
REFRESH_METHODS = ("full", "rotate")
MODE_LABELS = {"none": "", "dom": "Dom-", "bulk": "Bulk-", "interp": "Interp-"}
OPTIMIZER_LABELS = {"sgd": "SGD", "gd": "GD", "sam": "SAM", "momentum": "SGD+momentum", "adam": "Adam"}


@dataclass(frozen=True)
class RunConfig:
    """One experiment: phase 1 (base optimizer, no projection) until the switch, then every
    mode in ``modes`` continues from the same parameters and optimizer state.

    Fields (units): ``lr`` step size η; ``batch_size`` samples per minibatch (ignored by
    ``gd``); ``k`` dominant-subspace dimension; ``steps`` total steps including phase 1;
    ``switch`` ``"rule"`` (EMA of χ_k(∇L) with factor ``switch_ema`` exceeds
    ``switch_threshold``, checked every ``switch_check_every`` steps) or ``"step"`` (at
    ``switch_step``); if the rule has not fired by ``max_switch_step`` the run switches there
    and says so in the summary. ``refresh_every`` steps between subspace refreshes (1 is the
    paper's protocol); ``hessian_samples`` how many of the first training samples define the
    Hessian (``None``: all). ``refresh_method``: ``"full"`` (a warm tracker update to tolerance
    ``tracker_tol`` at every refresh, randomized acceptance: how every run of protocol 1 was made)
    or ``"rotate"`` (``refresh_columns`` Hessian-vector products per refresh, a power step on that
    many basis vectors in turn, certified every ``certify_every`` steps after the switch by a full
    update with explicit residuals; the run logs ``subspace_sin``, the sine of the largest angle
    between the rotated basis and the certified one, at each certification; measured in
    benchmarks/results/refresh.md). ``project_on`` for momentum/Adam: project the final ``"update"``
    (optimizer state unprojected) or the ``"gradient"`` fed to the optimizer.
    ``data_source`` for ``sst2-1k``: ``"glue"`` (the real SST-2, downloaded), ``"substitute"``
    (the offline Rotten-Tomatoes stand-in) or ``"auto"`` (GLUE when reachable: the data then
    depend on the network, so pin it for a reproducible run). ``device``: ``"cpu"``,
    ``"cuda"``, ``"cuda:1"``...; every tensor of the run lives there (checked when it runs, so
    a config saved on a GPU machine still loads on a laptop).
    """

    dataset: str = "mnist-5k"
    data_source: str = "auto"
    n_train: int | None = None
    model: str = "mlp"
    loss: str = "mse"
    optimizer: str = "sgd"
    lr: float = 0.01
    batch_size: int = 50
    momentum: float = 0.9
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    rho: float = 0.05
    modes: tuple = ("none", "dom", "bulk")
    interp_alpha: float | None = None
    interp_beta: float | None = None
    project_on: str = "update"
    k: int = 10
    steps: int = 20_000
    switch: str = "rule"
    switch_step: int = 2000
    switch_threshold: float = 0.95
    switch_ema: float = 0.9
    switch_check_every: int = 100
    max_switch_step: int | None = None
    refresh_every: int = 1
    refresh_method: str = "full"
    refresh_columns: int = 2
    certify_every: int = 100
    hessian_samples: int | None = None
    tracker_tol: float = 1e-2
    oversample: int = 2
    log_every: int = 10
    checkpoint_every: int = 500
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"

    # ------------------------------------------------------------------ construction
    def __post_init__(self):
        object.__setattr__(self, "modes", _parse_modes(self.modes))
        self.validate()
        # Canonical types, so that lr=1 and lr=1.0 (or k=3.0 from a JSON file, or k=np.int64(3))
        # are one config with one store key.
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _FLOAT_FIELDS and value is not None:
                object.__setattr__(self, f.name, float(value))
            elif f.name in _INT_FIELDS and value is not None:
                object.__setattr__(self, f.name, int(value))

    @classmethod
    def preset(cls, name: str, **overrides) -> "RunConfig":
        """A named preset (see ``PRESETS``) with fields overridden by keyword."""
        base = dict(PRESETS[check_choice("preset", name, PRESETS)])
        _reject_unknown(overrides)
        base.update(overrides)
        return cls(**base)

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        """Build from a plain dict (e.g. a JSON config file); unknown keys are rejected by name.
        A ``"preset"`` key names the starting preset."""
        data = dict(data)
        preset = data.pop("preset", None)
        _reject_unknown(data)
        if preset is not None:
            return cls.preset(preset, **data)
        return cls(**data)

    @classmethod
    def from_json(cls, path) -> "RunConfig":
        with open(path) as fh:
            return cls.from_dict(json.load(fh))

    def replace(self, **changes) -> "RunConfig":
        _reject_unknown(changes)
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ identity
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["modes"] = list(self.modes)
        return d

    def _identity(self) -> dict:
        d = self.to_dict()
        for name, default in _LATE_FIELDS.items():
            if d[name] == default:
                del d[name]
        return d

    def key(self) -> str:
        """Short hash of the full config: the run's folder name in the store."""
        payload = json.dumps({"protocol": PROTOCOL_VERSION, **self._identity()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def phase1_key(self) -> str:
        """Hash of what phase 1 depends on (not the modes), so phase 1 can be shared."""
        d = self._identity()
        for name in ("modes", "interp_alpha", "interp_beta", "project_on", "steps", "log_every",
                     "checkpoint_every"):
            d.pop(name)
        payload = json.dumps({"protocol": PROTOCOL_VERSION, **d}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def label(self, mode: str) -> str:
        """Human name of a curve, e.g. ``Bulk-SGD``."""
        return MODE_LABELS[mode] + OPTIMIZER_LABELS[self.optimizer]

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        self._check_choices()
        self._check_reals()
        self._check_integers()
        self._check_modes()
        # GD uses the whole data set and ignores batch_size.
        if self.optimizer != "gd" and self.n_train is not None and self.batch_size > self.n_train:
            raise ValueError(f"batch_size={self.batch_size} is larger than the data set (n_train={self.n_train})")

    def _check_choices(self) -> None:
        from ..datasets import LOADERS
        from ..losses import LOSSES
        from ..models import MODELS

        check_choice("dataset", self.dataset, LOADERS)
        check_choice("model", self.model, MODELS)
        check_choice("loss", self.loss, LOSSES)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("project_on", self.project_on, PROJECT_ON)
        check_choice("switch", self.switch, ("rule", "step"))
        check_choice("dtype", self.dtype, ("float32", "float64"))
        check_choice("data_source", self.data_source, DATA_SOURCES)
        check_choice("refresh_method", self.refresh_method, REFRESH_METHODS)
        if self.data_source != "auto" and self.dataset != "sst2-1k":
            raise ValueError(f"data_source={self.data_source!r} applies to dataset 'sst2-1k' only; "
                             f"got dataset={self.dataset!r} (leave data_source='auto')")
        _parse_device(self.device)

    def _check_reals(self) -> None:
        check_positive("lr", _real("lr", self.lr))
        check_positive("rho", _real("rho", self.rho), allow_zero=True)
        for name in ("momentum", "adam_beta1", "adam_beta2", "switch_ema"):
            _check_unit_interval(name, getattr(self, name))
        check_positive("adam_eps", _real("adam_eps", self.adam_eps))
        check_positive("tracker_tol", _real("tracker_tol", self.tracker_tol))
        if not 0 < check_positive("switch_threshold", _real("switch_threshold", self.switch_threshold)) <= 1:
            raise ValueError(f"switch_threshold must be in (0, 1], got {self.switch_threshold}")
        for name in ("interp_alpha", "interp_beta"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(_real(name, value)):
                raise ValueError(f"{name} must be a finite number, got {value!r}")

    def _check_integers(self) -> None:
        for name, low in (("k", 1), ("batch_size", 1), ("steps", 1), ("switch_step", 0), ("switch_check_every", 1),
                          ("refresh_every", 1), ("log_every", 1), ("checkpoint_every", 1), ("certify_every", 1)):
            _integer(name, getattr(self, name), low)
        # At most k when it is used (k checked above); the default 2 must not refuse a k = 1 run.
        _integer("refresh_columns", self.refresh_columns, 1, int(self.k) + 1 if self.refresh_method == "rotate" else None)
        # The tracker carries k + oversample vectors of the parameter dimension: more than a few
        # hundred costs memory and HVPs for nothing (the paper's trackers use a handful).
        _integer("oversample", self.oversample, 0, MAX_OVERSAMPLE + 1)
        _integer("seed", self.seed, 0, SEED_LIMIT)
        for name in ("n_train", "hessian_samples", "max_switch_step"):
            if getattr(self, name) is not None:
                _integer(name, getattr(self, name), 1)

    def _check_modes(self) -> None:
        if not self.modes:
            raise ValueError("modes must name at least one of " + ", ".join(MODES))
        for mode in self.modes:
            check_choice("modes", mode, MODES)
        if len(set(self.modes)) != len(self.modes):
            raise ValueError(f"modes must not repeat a mode; got {list(self.modes)}")
        if "interp" in self.modes and (self.interp_alpha is None or self.interp_beta is None):
            raise ValueError("mode 'interp' needs both interp_alpha and interp_beta "
                             f"(got interp_alpha={self.interp_alpha}, interp_beta={self.interp_beta})")


MAX_OVERSAMPLE = 256
SEED_LIMIT = 2 ** 64  # torch.manual_seed accepts seeds in [0, 2**64 - 1] (and negatives, refused here)


def _parse_modes(modes) -> tuple:
    """``modes`` as a tuple: from ``"none,dom"`` (the command line) or a list/tuple of names."""
    if isinstance(modes, str):
        return tuple(m.strip() for m in modes.split(",") if m.strip())
    if isinstance(modes, (list, tuple)):
        return tuple(modes)
    raise ValueError(f"modes must be a list of mode names or a comma-separated string of them "
                     f"({', '.join(MODES)}); got {modes!r}")


def _real(name: str, value) -> float:
    """``value`` as a float if it is a real number (NumPy's included); ``bool`` and text are not."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


def _integer(name: str, value, low: int, high: int | None = None) -> int:
    """``check_int_range`` that also takes NumPy integers and whole NumPy floats (not ``bool``)."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        value = int(value)
    elif isinstance(value, numbers.Real) and not isinstance(value, float):
        value = float(value)
    return check_int_range(name, value, low, high)


def _parse_device(device: str) -> torch.device:
    if not isinstance(device, str):
        raise ValueError(f"device must name a torch device such as 'cpu' or 'cuda'; got {device!r}")
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device must name a torch device such as 'cpu' or 'cuda'; got {device!r}") from None
    if parsed.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device must be 'cpu', 'cuda' (or 'cuda:N') or 'mps'; got {device!r}")
    return parsed


def resolve_device(device: str) -> torch.device:
    """The ``torch.device`` a run uses; ``ValueError`` naming ``device`` when it is not available
    on this machine (never a silent fall-back to the CPU)."""
    parsed = _parse_device(device)
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was requested but CUDA is not available on this machine "
                             "(torch.cuda.is_available() is False); use device='cpu'")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r} was requested but this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s)")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r} was requested but MPS is not available on this machine; "
                         "use device='cpu'")
    return parsed


def _check_unit_interval(name: str, value) -> None:
    try:
        ok = 0 <= _real(name, value) < 1
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")


_FLOAT_FIELDS = {"lr", "momentum", "adam_beta1", "adam_beta2", "adam_eps", "rho", "interp_alpha", "interp_beta",
                 "switch_threshold", "switch_ema", "tracker_tol"}
_INT_FIELDS = {"n_train", "batch_size", "k", "steps", "switch_step", "switch_check_every", "max_switch_step",
               "refresh_every", "refresh_columns", "certify_every", "hessian_samples", "oversample", "log_every",
               "checkpoint_every", "seed"}


def _reject_unknown(d: dict) -> None:
    known = {f.name for f in fields(RunConfig)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown config key {unknown[0]!r}" + (f" (and {unknown[1:]})" if len(unknown) > 1 else "")
                         + f"; known keys: {', '.join(sorted(known))}")


# The paper's settings, and a class-sized version of the same story (see README: "The class
# preset" for what it changes and what that costs in fidelity, measured by
# benchmarks/bench_engine.py).
PRESETS: dict[str, dict] = {
    "paper": dict(steps=20_000, k=10, lr=0.01, batch_size=50, refresh_every=1, switch="rule",
                  switch_check_every=100, log_every=50),
    "class": dict(steps=3000, k=10, lr=0.01, batch_size=50, refresh_every=10, switch="step",
                  switch_step=2000, hessian_samples=1000, log_every=20, checkpoint_every=200),
    # Closer to the paper, affordable on a CPU in about an hour: full 5000-sample Hessian,
    # the paper's switch rule, subspace refreshed every 5 steps instead of every step.
    "long": dict(steps=8000, k=10, lr=0.01, batch_size=50, refresh_every=5, switch="rule",
                 switch_check_every=100, max_switch_step=6000, log_every=50, checkpoint_every=250),
    # The reference run of the fidelity benchmarks (benchmarks/results/reference.md): the paper's
    # protocol (full 5000-sample Hessian, the replication's switch rule checked every 100 steps,
    # 20,000 steps) with the cheap refresh: every step one Hessian-vector product renews one basis
    # vector in turn, and every 100 steps a full update with explicit residuals ≤ 1e-3 certifies
    # the subspace and logs the angle the cheap refresh had drifted to (subspace_sin).
    # max_switch_step guards the run's length if the rule never fires (the summary says so).
    "reference": dict(steps=20_000, k=10, lr=0.01, batch_size=50, refresh_every=1, refresh_method="rotate",
                      refresh_columns=1, certify_every=100, tracker_tol=1e-3, switch="rule",
                      switch_check_every=100, max_switch_step=10_000, log_every=50, checkpoint_every=500),
    "smoke": dict(steps=60, k=3, lr=0.01, batch_size=50, n_train=500, refresh_every=5, switch="step",
                  switch_step=30, hessian_samples=200, log_every=5, checkpoint_every=20),
    # The paper's other two panels of Figure 1 (shared/paper/BRIEF.md): Cohen et al.'s cnn-relu on
    # CIFAR10-5k and the 2-layer Transformer on SST2-1k (GLUE), both downloaded on first use;
    # MSE, η = 0.001, batch 50, 20,000 steps, full-data Hessian refreshed every step.
    "cnn-paper": dict(dataset="cifar10-5k", model="cnn", steps=20_000, k=10, lr=0.001, batch_size=50,
                      refresh_every=1, switch="rule", switch_check_every=100, log_every=50),
    "transformer-paper": dict(dataset="sst2-1k", data_source="glue", model="transformer", steps=20_000, k=2,
                              lr=0.001, batch_size=50, refresh_every=1, switch="rule", switch_check_every=100,
                              log_every=50),
    # Class size and offline: the three-curve figure in a few minutes on 2 cores (notebook 13).
    # Changes from the above:
    # - cnn-class: Fashion-MNIST-5k from Debian's package instead of CIFAR10-5k (no package here
    #   ships CIFAR-10; online, add dataset="cifar10-5k"): 1x28x28 grey images, 25,258 parameters
    #   instead of 30,634; 1000 of the 5000 samples (the engine's fixed shuffle); η = 0.005 (5x),
    #   in the paper's SGD regime: SGD's λ1 at the checks of steps 100-400 is 249-281 against
    #   2/η = 400 (at most 70% of it: a 30% margin), χ 0.97-0.99, loss 0.35 and training accuracy
    #   0.83 at step 400 (benchmarks/preset_sweep.py cnn_lr0.005, benchmarks/results/preset_sweep.jsonl).
    #   At η = 0.01 (the shipped runs before this change) λ1 was 166-201 against 2/η = 200: the Edge
    #   of Stability, not the SGD regime; at 0.001 χ falls to ~0.6 by step 400. Switch at step 400
    #   instead of the rule (χ is already ≈ 0.95 at initialisation, so the rule would fire at once);
    #   700 steps; Hessian of the first 100 of them, refreshed every 25 steps. Its shipped run
    #   (data/runs/de876ea9a892b78d): SGD's λ1 at most 289 over the run (72% of 2/η), Bulk-SGD's up
    #   to 379; Dom-SGD made -10% of SGD's loss decrease after the switch, Bulk-SGD 130%
    #   (benchmarks/results/claims.md).
    # - transformer-class: the offline SST-2 substitute, pinned (Rotten-Tomatoes sentences rated by
    #   the crowd, from the vaderSentiment sdist); the first 200 of the 1000 sentences (the engine's
    #   fixed shuffle), Hessian of all 200 refreshed every 20 steps; η = 0.01 (10x); switch at step
    #   1500; 2250 steps. Its shipped run (data/runs/fa1f405bd719a6d2): SGD learns (training accuracy
    #   0.80 at step 1450, chance 0.5), χ mostly 0.8-0.99 with single checks dipping to 0.12, λ1 = 83
    #   at the last check before the switch (42% of 2/η = 200) but sharpening to 173 (87%) by the end
    #   of the SGD branch; Dom-SGD made -6% of SGD's loss decrease after the switch, Bulk-SGD 129%.
    #   Before (1000 sentences, η = 0.01, switch at 750, 1250 steps) SGD did not learn: accuracy 0.59
    #   at the switch, SGD removed 1.8% of the loss after it. Other settings tried
    #   (benchmarks/preset_sweep.py, benchmarks/results/preset_sweep.jsonl): 1000 sentences at η = 0.05
    #   reach accuracy 0.64 by step 700; 200 sentences at η = 0.05 / 0.02 learn but λ1 reaches 2/η
    #   (35-43 against 40; 98-101 against 100 by step 1200): the Edge of Stability.
    "cnn-class": dict(dataset="fashion-mnist-5k", model="cnn", n_train=1000, steps=700, k=10, lr=0.005,
                      batch_size=50, switch="step", switch_step=400, hessian_samples=100, refresh_every=25,
                      switch_check_every=100, log_every=25, checkpoint_every=100),
    "transformer-class": dict(dataset="sst2-1k", data_source="substitute", model="transformer", n_train=200,
                              steps=2250, k=2, lr=0.01, batch_size=50, switch="step", switch_step=1500,
                              hessian_samples=200, refresh_every=20, switch_check_every=100, log_every=50,
                              checkpoint_every=250),
}
