"""One experiment, from config to metrics on disk: the paper's switch protocol.

Phase 1 runs the base optimizer without projection until the switch (a fixed step, or the
paper's rule: the EMA of χ_k(∇L) exceeds a threshold). Phase 2 continues every requested mode
from the *same* parameters, optimizer state and minibatch sequence, in lock-step, so SGD,
Dom-SGD and Bulk-SGD share their history up to the switch and their curves grow side by side.

Cadences: projected branches refresh their basis (warm-started ``SubspaceTracker`` on the
Hessian of the first ``hessian_samples`` training samples) every ``refresh_every`` steps;
unprojected runs (phase 1 and mode ``none``) measure it every ``switch_check_every`` steps, so
their ``alignment_full`` is logged at those steps only. Metrics are logged every
``log_every`` steps, *before* the step at that index is applied.

``iter_run`` yields metric rows (dicts) as they are logged and writes them to the run store;
a completed config is answered from the store, an interrupted one resumes from its checkpoint.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch

from ..datasets import load as load_dataset
from ..eigen import EigenResult
from ..hessian import HessianOperator
from ..losses import accuracy, get_loss
from ..models import build_model
from ..projection import alignment, bulk, dominant
from ..tracker import SubspaceTracker
from .config import RunConfig, resolve_device
from .optimizers import UpdateRule, make_projection
from .store import (MetricsWriter, RunResult, RunStore, load_checkpoint, save_checkpoint, write_json)

EVAL_CHUNK = 2500
DATA_ORDER_SEED = 12345  # fixed shuffle so "the first n samples" are class-mixed in every run

BASE_COLUMNS = ["step", "phase", "mode", "train_loss", "train_acc", "batch_loss", "alignment_full",
                "alignment_batch", "alignment_update", "sharpness", "two_over_lr", "update_norm",
                "eff_lr_dom", "eff_lr_bulk", "tracker_residual", "hvps", "wall"]


FINISHED = ("completed", "diverged")  # statuses a store answers without running again


class RunDiverged(RuntimeError):
    pass


def columns(cfg: RunConfig) -> list[str]:
    return BASE_COLUMNS + [f"eig_{i + 1}" for i in range(cfg.k)]


# ---------------------------------------------------------------------------- the switch rule
@dataclass
class SwitchRule:
    """The paper's switch rule as a small state machine.

    At each check, ``update(chi)`` folds χ_k(∇L) into an exponential moving average with factor
    ``factor`` (bias-corrected, so the first check counts fully rather than being pulled
    towards 0) and returns ``True`` when the average exceeds ``threshold``. Non-finite χ (no
    basis yet) are skipped. ``ema`` and ``checks`` are the whole state (saved in checkpoints).
    """

    threshold: float = 0.95
    factor: float = 0.9
    ema: float = 0.0
    checks: int = 0

    @property
    def value(self) -> float:
        """The bias-corrected average so far (NaN before the first check)."""
        return self.ema / (1 - self.factor ** self.checks) if self.checks else math.nan

    def update(self, chi: float) -> bool:
        if not math.isfinite(chi):
            return False
        self.checks += 1
        self.ema = self.factor * self.ema + (1 - self.factor) * chi
        return self.value > self.threshold


def first_switch(chis, *, threshold: float = 0.95, factor: float = 0.9) -> int | None:
    """Index of the check in the sequence ``chis`` at which the rule fires, or ``None``."""
    rule = SwitchRule(threshold, factor)
    for i, chi in enumerate(chis):
        if rule.update(chi):
            return i
    return None


# ---------------------------------------------------------------------------- the problem
@dataclass
class Problem:
    """Data, loss and a model factory for one config (shared by all branches)."""

    cfg: RunConfig
    X: torch.Tensor
    Y: torch.Tensor
    labels: torch.Tensor
    Xh: torch.Tensor
    Yh: torch.Tensor
    loss_fn: Callable
    template: torch.nn.Module
    source: str = ""  # where the data came from (a substitute is named here)

    @classmethod
    def build(cls, cfg: RunConfig) -> "Problem":
        """Load the data onto ``cfg.device`` (token ids stay int64) and build the model from it
        (``data=`` gives the Transformer its vocabulary size). ``ValueError`` when the device is
        not available."""
        device = resolve_device(cfg.device)
        dtype = getattr(torch, cfg.dtype)
        options = {} if cfg.data_source == "auto" else {"source": cfg.data_source}
        data = load_dataset(cfg.dataset, **options)
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(DATA_ORDER_SEED))
        n = min(cfg.n_train or len(data), len(data))
        if cfg.optimizer != "gd" and cfg.batch_size > n:  # GD ignores batch_size
            raise ValueError(f"batch_size={cfg.batch_size} is larger than the data set ({n} samples)")
        idx = order[:n]
        X, Y, labels = (t[idx].to(device) for t in data)
        if X.is_floating_point():
            X = X.to(dtype)
        Y = Y.to(dtype)
        nh = min(cfg.hessian_samples or n, n)
        model = build_model(cfg.model, data=data, seed=cfg.seed, dtype=dtype).to(device)
        num_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        if cfg.k >= num_params:
            raise ValueError(f"k must be smaller than the number of parameters ({num_params}); got k={cfg.k}")
        return cls(cfg, X, Y, labels, X[:nh], Y[:nh], get_loss(cfg.loss), model, data.source)

    def new_model(self) -> torch.nn.Module:
        import copy
        return copy.deepcopy(self.template)


def _params(model) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


def _flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _set_flat(params, flat: torch.Tensor) -> None:
    with torch.no_grad():
        i = 0
        for p in params:
            p.copy_(flat[i:i + p.numel()].view_as(p))
            i += p.numel()


def apply_update(model, delta: torch.Tensor) -> None:
    """θ ← θ − Δθ in place (bumps the parameters' versions, so cached Hessian graphs refresh)."""
    with torch.no_grad():
        i = 0
        for p in _params(model):
            p.sub_(delta[i:i + p.numel()].view_as(p))
            i += p.numel()


def _grad(model, loss_fn, X, Y) -> tuple[float, torch.Tensor]:
    params = _params(model)
    with torch.enable_grad():
        loss = loss_fn(model(X), Y)
        grads = torch.autograd.grad(loss, params)
    return float(loss.detach()), _flat(grads)


def _full_loss_grad(model, loss_fn, X, Y) -> tuple[float, torch.Tensor]:
    """Mean loss and gradient over all of ``X``, in chunks of ``EVAL_CHUNK`` samples."""
    total, loss = None, 0.0
    for s in range(0, len(X), EVAL_CHUNK):
        chunk_loss, g = _grad(model, loss_fn, X[s:s + EVAL_CHUNK], Y[s:s + EVAL_CHUNK])
        weight = min(len(X) - s, EVAL_CHUNK) / len(X)
        loss += chunk_loss * weight
        total = g * weight if total is None else total + g * weight
    return loss, total


def _full_grad(model, loss_fn, X, Y) -> torch.Tensor:
    return _full_loss_grad(model, loss_fn, X, Y)[1]


@torch.no_grad()
def _evaluate(model, loss_fn, X, Y, labels) -> tuple[float, float]:
    loss, correct = 0.0, 0.0
    for s in range(0, len(X), EVAL_CHUNK):
        out = model(X[s:s + EVAL_CHUNK])
        m = len(out)
        loss += float(loss_fn(out, Y[s:s + EVAL_CHUNK])) * m
        correct += accuracy(out, labels[s:s + EVAL_CHUNK]) * m
    return loss / len(X), correct / len(X)


# ---------------------------------------------------------------------------- one trajectory
@dataclass
class Branch:
    """One trajectory: its model, optimizer state, subspace tracker and minibatch RNG."""

    mode: str
    model: torch.nn.Module
    rule: UpdateRule
    tracker: SubspaceTracker
    gen: torch.Generator
    hvps: int = 0
    status: str = "running"
    message: str = ""
    eigs: torch.Tensor | None = None
    residual: float = math.nan

    @property
    def basis(self):
        return self.tracker.basis

    def refresh(self, problem: Problem) -> None:
        H = HessianOperator(self.model, problem.loss_fn, problem.Xh, problem.Yh)
        result = self.tracker.update(H)
        self.hvps += result.matvecs
        self.eigs, self.residual = result.values, float(result.residuals.max())

    def state(self, prefix: str) -> dict:
        out = {f"{prefix}params": _flat(p.detach() for p in _params(self.model)),
               f"{prefix}gen": self.gen.get_state(), f"{prefix}hvps": self.hvps,
               f"{prefix}status": np.array(self.status), f"{prefix}message": np.array(self.message),
               f"{prefix}residual": self.residual}
        out.update({f"{prefix}rule.{k}": v for k, v in self.rule.state_dict().items()})
        if self.tracker._block is not None:
            out[f"{prefix}block"] = self.tracker._block
            out[f"{prefix}basis"] = self.tracker.basis
            out[f"{prefix}eigs"] = self.eigs
            out[f"{prefix}tracker_updates"] = self.tracker.updates
        return out

    def load(self, arrays: dict, prefix: str, problem: Problem) -> None:
        _set_flat(_params(self.model), torch.from_numpy(arrays[f"{prefix}params"]).to(problem.X.device))
        self.gen.set_state(torch.from_numpy(arrays[f"{prefix}gen"]))
        self.hvps = int(arrays[f"{prefix}hvps"])
        self.status, self.message = str(arrays[f"{prefix}status"]), str(arrays[f"{prefix}message"])
        self.residual = float(arrays[f"{prefix}residual"])
        device = problem.X.device  # checkpoints hold host arrays: every tensor goes back to the run's device
        self.rule.load_state_dict({k[len(prefix) + 5:]: torch.from_numpy(v).to(device) for k, v in arrays.items()
                                   if k.startswith(f"{prefix}rule.")})
        if f"{prefix}block" in arrays:
            basis = arrays.get(f"{prefix}basis")
            self.restore_tracker(torch.from_numpy(arrays[f"{prefix}block"]).to(device),
                                 None if basis is None else torch.from_numpy(basis).to(device),
                                 torch.from_numpy(arrays[f"{prefix}eigs"]).to(device),
                                 int(arrays.get(f"{prefix}tracker_updates", 0)))

    def restore_tracker(self, block: torch.Tensor, basis: torch.Tensor | None, eigs: torch.Tensor,
                        updates: int) -> None:
        """Put the tracker exactly where a saved one was: the carried block (the next warm
        start), the basis in use (which may differ from the block's first columns) and the
        update count (the tracker seeds its random probes with it)."""
        self.tracker.restore(block, eigs)
        if basis is not None:
            k = basis.shape[1]
            self.tracker.result = EigenResult(eigs[:k], basis,
                                              torch.full((k,), math.nan, dtype=basis.dtype, device=basis.device),
                                              0, False, "restored")
        self.tracker.updates = updates
        self.eigs = eigs


def _new_branch(problem: Problem, mode: str, gen: torch.Generator) -> Branch:
    cfg = problem.cfg
    rule = UpdateRule(cfg.optimizer, lr=cfg.lr, momentum=cfg.momentum, beta1=cfg.adam_beta1,
                      beta2=cfg.adam_beta2, eps=cfg.adam_eps, project_on=cfg.project_on)
    tracker = SubspaceTracker(cfg.k, oversample=cfg.oversample, tol=cfg.tracker_tol)
    return Branch(mode, problem.new_model(), rule, tracker, gen)


def _fork(problem: Problem, source: Branch, mode: str) -> Branch:
    """A new branch starting exactly where ``source`` is (parameters, state, RNG, basis)."""
    gen = torch.Generator(device="cpu")
    gen.set_state(source.gen.get_state())
    branch = _new_branch(problem, mode, gen)
    branch.model.load_state_dict(source.model.state_dict())
    branch.rule.load_state_dict(source.rule.state_dict())
    if source.tracker._block is not None:
        branch.restore_tracker(source.tracker._block.clone(), source.tracker.basis.clone(), source.eigs,
                               source.tracker.updates)
    branch.eigs, branch.residual, branch.hvps = source.eigs, source.residual, source.hvps
    return branch


def _step(problem: Problem, br: Branch, t: int, log: bool, measure: bool, switch_step: int | None) -> dict | None:
    """Advance ``br`` by one step at index ``t``; return a metric row when ``log``."""
    cfg = problem.cfg
    projected = br.mode != "none"
    if (projected and (t - switch_step) % cfg.refresh_every == 0) or (not projected and measure):
        try:
            br.refresh(problem)
        except torch.linalg.LinAlgError as exc:  # a blown-up iterate makes the eigensolver fail
            loss, _ = _evaluate(br.model, problem.loss_fn, problem.X, problem.Y, problem.labels)
            raise RunDiverged(_divergence_message(
                cfg, br, t, f"the Hessian eigensolver failed ({exc}) with the training loss at {loss:.3g}")) from exc
    model = br.model
    if cfg.optimizer == "gd":
        Xb, Yb = problem.X, problem.Y
    else:
        idx = torch.randint(len(problem.X), (cfg.batch_size,), generator=br.gen).to(problem.X.device)
        Xb, Yb = problem.X[idx], problem.Y[idx]
    if cfg.optimizer == "gd":
        batch_loss, g = _full_loss_grad(model, problem.loss_fn, Xb, Yb)
    else:
        batch_loss, g = _grad(model, problem.loss_fn, Xb, Yb)
    if cfg.optimizer == "sam" and cfg.rho > 0:
        params = _params(model)
        theta = _flat(p.detach() for p in params).clone()
        _set_flat(params, theta + cfg.rho * g / g.norm().clamp_min(1e-12))
        _, g = _grad(model, problem.loss_fn, Xb, Yb)  # the ascent step itself is not projected
        _set_flat(params, theta)
    U = br.basis
    project = make_projection(br.mode, U, cfg.interp_alpha, cfg.interp_beta)
    delta = br.rule.step(g, project)
    if not (math.isfinite(batch_loss) and torch.isfinite(delta).all()):
        what = (f"the loss became {batch_loss}" if not math.isfinite(batch_loss)
                else f"the update became non-finite (minibatch loss {batch_loss:.3g})")
        raise RunDiverged(_divergence_message(cfg, br, t, what))
    row = _metrics(problem, br, t, g, delta, batch_loss, measure) if log else None
    apply_update(model, delta)
    return row


def _divergence_message(cfg, br, t, what: str) -> str:
    """``what`` happened at step ``t``; name the likely cause (the step size against the curvature)."""
    sharp = float(br.eigs[0]) if br.eigs is not None else float("nan")
    curvature = (f"2/lr={2 / cfg.lr:.3g}" + (f", last measured sharpness λ1≈{sharp:.3g}" if math.isfinite(sharp) else ""))
    if br.mode == "interp" and max(abs(cfg.interp_alpha), abs(cfg.interp_beta)) > 1:
        cause = (f"the interpolation weights (interp_alpha={cfg.interp_alpha:g}, interp_beta={cfg.interp_beta:g}) "
                 f"multiply the step size lr={cfg.lr:g}, likely too much for the curvature ({curvature})")
    else:
        cause = f"the learning rate lr={cfg.lr:g} is likely too large for the curvature ({curvature})"
    return f"{cfg.label(br.mode)} diverged at step {t}: {what}; {cause}."


def _metrics(problem: Problem, br: Branch, t: int, g, delta, batch_loss: float, measure: bool) -> dict:
    cfg = problem.cfg
    loss, acc = _evaluate(br.model, problem.loss_fn, problem.X, problem.Y, problem.labels)
    if not math.isfinite(loss):
        raise RunDiverged(_divergence_message(cfg, br, t, f"the training loss became {loss}"))
    row = {"step": t, "mode": br.mode, "train_loss": loss, "train_acc": acc, "batch_loss": batch_loss,
           "update_norm": float(delta.norm()), "two_over_lr": 2 / cfg.lr, "hvps": br.hvps,
           "tracker_residual": br.residual}
    U = br.basis
    if U is not None and (br.mode != "none" or measure):
        full_g = _full_grad(br.model, problem.loss_fn, problem.X, problem.Y)
        row["alignment_full"] = alignment(full_g, U)
        row["alignment_batch"] = alignment(g, U)
        row["alignment_update"] = alignment(delta, U)
        row["eff_lr_dom"] = _ratio(dominant(delta, U), dominant(g, U))
        row["eff_lr_bulk"] = _ratio(bulk(delta, U), bulk(g, U))
    if br.eigs is not None:
        row["sharpness"] = float(br.eigs[0])
        row.update({f"eig_{i + 1}": float(v) for i, v in enumerate(br.eigs)})
    return row


def _ratio(a: torch.Tensor, b: torch.Tensor) -> float:
    nb = float(b.norm())
    return float(a.norm()) / nb if nb > 0 else float("nan")


# ---------------------------------------------------------------------------- the protocol
def iter_run(cfg: RunConfig, *, store="runs", stop: threading.Event | None = None, resume: bool = True,
             progress: bool = False) -> Iterator[dict]:
    """Run (or read back) the experiment ``cfg``, yielding metric rows as they are logged.

    ``store``: run-store folder (or a ``RunStore``). ``stop``: a ``threading.Event``; when set,
    the run checkpoints, is marked ``stopped`` and the generator returns (the rows so far are
    kept; asking again resumes). A finished config (``completed`` or ``diverged``: running it
    again would give the same numbers) is answered from the store at once. Every yielded row
    has all of ``columns(cfg)`` (NaN where a metric was not measured at that step), exactly as
    the store reads it back.
    """
    store = store if isinstance(store, RunStore) else RunStore(store)
    path = store.path(cfg)
    existing = store.load(cfg)
    if existing is not None and existing.status in FINISHED:
        yield from existing.rows
        return
    problem = Problem.build(cfg)
    checkpoint = load_checkpoint(path / "checkpoint.npz") if (resume and existing is not None) else None
    if checkpoint is None and existing is not None:
        for name in ("metrics.csv", "checkpoint.npz"):
            (path / name).unlink(missing_ok=True)
    write_json(path / "config.json", cfg.to_dict())

    # ---- state: phase-1 branch, or the phase-2 branches, from scratch or from the checkpoint
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    base = _new_branch(problem, "none", gen)
    branches: list[Branch] = []
    t, switch_step, switch_reason, wall0 = 0, None, "", 0.0
    rule = SwitchRule(cfg.switch_threshold, cfg.switch_ema)
    phase1_hvps = 0  # HVPs of the shared phase 1, counted once in the summary
    if checkpoint is not None:
        t = int(checkpoint["t"])
        wall0 = float(checkpoint["wall"])
        rule.ema, rule.checks = float(checkpoint["ema"]), int(checkpoint["n_checks"])
        switch_reason = str(checkpoint["switch_reason"])
        phase1_hvps = int(checkpoint["phase1_hvps"]) if "phase1_hvps" in checkpoint else 0
        if int(checkpoint["switch_step"]) >= 0:
            switch_step = int(checkpoint["switch_step"])
            for mode in cfg.modes:
                br = _new_branch(problem, mode, torch.Generator(device="cpu"))
                br.load(checkpoint, f"{mode}.", problem)
                branches.append(br)
        else:
            base.load(checkpoint, "base.", problem)
    writer = MetricsWriter(path / "metrics.csv", columns(cfg),
                           keep_until=((0 if switch_step is None else 1), t - 1) if checkpoint is not None else None)
    summary = {"status": "running", "config_key": cfg.key(), "labels": {m: cfg.label(m) for m in cfg.modes}}
    write_json(path / "summary.json", summary)
    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=cfg.steps, initial=t, desc=f"{cfg.label('none')} run", unit="step")

    def wall() -> float:
        return wall0 + time.perf_counter() - start

    def checkpoint_now() -> None:
        arrays = {"t": t, "wall": wall(), "ema": rule.ema, "n_checks": rule.checks, "phase1_hvps": phase1_hvps,
                  "switch_step": -1 if switch_step is None else switch_step,
                  "switch_reason": np.array(switch_reason)}
        if switch_step is None:
            arrays.update(base.state("base."))
        for br in branches:
            arrays.update(br.state(f"{br.mode}."))
        save_checkpoint(path / "checkpoint.npz", arrays)

    def finish(status: str, message: str = "") -> None:
        summary.update(status=status, message=message, steps_done=t, switch_step=switch_step,
                       switch_reason=switch_reason, wall_seconds=round(wall(), 3))
        live = branches or [base]
        for b in live:
            if b.status == "running":
                b.status = "completed" if status in ("completed", "diverged") else status
        # Forked branches start with phase 1's count: count the shared part once.
        summary["hvps"] = (sum(b.hvps - phase1_hvps for b in branches) + phase1_hvps) if branches else base.hvps
        summary["modes"] = {b.mode: {"status": b.status, "message": b.message} for b in live}
        last = {}
        for row in store_rows():
            last[row["mode"] if row["phase"] == "main" else "warmup"] = row["train_loss"]
        summary["final_train_loss"] = last
        write_json(path / "summary.json", summary)

    def store_rows():
        writer._fh.flush()
        from .store import read_metrics
        return read_metrics(path / "metrics.csv")

    all_columns = columns(cfg)

    def emit(row: dict, phase: str) -> dict:
        row["phase"] = phase
        row["wall"] = round(wall(), 4)
        row = {c: row.get(c, math.nan) for c in all_columns}
        writer.write(row)
        return row

    try:
        # ---- phase 1: the base optimizer, shared by every mode
        while switch_step is None and t < cfg.steps:
            if stop is not None and stop.is_set():
                checkpoint_now()
                finish("stopped", f"stopped at step {t}")
                return
            if t % cfg.checkpoint_every == 0 and t > 0:
                checkpoint_now()
            measure = t % cfg.switch_check_every == 0 or (cfg.switch == "step" and t == cfg.switch_step)
            if cfg.switch == "step" and t >= cfg.switch_step:
                switch_step, switch_reason = t, "fixed step"
                break
            if cfg.switch == "rule" and cfg.max_switch_step is not None and t >= cfg.max_switch_step:
                switch_step, switch_reason = t, f"rule did not fire by max_switch_step={cfg.max_switch_step}"
                break
            row = _step(problem, base, t, t % cfg.log_every == 0 or measure, measure, None)
            if measure and cfg.switch == "rule":
                chi = row["alignment_full"] if row and "alignment_full" in row else math.nan
                if rule.update(chi):
                    switch_step, switch_reason = t + 1, f"rule fired (EMA of alignment > {cfg.switch_threshold})"
            if row is not None:
                yield emit(row, "warmup")
            t += 1
            if bar:
                bar.update(1)
        if switch_step is None:
            switch_step, switch_reason = t, "end of run before the switch"

        # ---- phase 2: every mode from the same point, in lock-step
        if not branches:
            phase1_hvps = base.hvps
            branches = [_fork(problem, base, mode) for mode in cfg.modes]
        while t < cfg.steps:
            if stop is not None and stop.is_set():
                checkpoint_now()
                finish("stopped", f"stopped at step {t}")
                return
            if t % cfg.checkpoint_every == 0 and t > switch_step:
                checkpoint_now()
            measure = (t - switch_step) % cfg.switch_check_every == 0
            log = (t - switch_step) % cfg.log_every == 0 or t == cfg.steps - 1
            for br in branches:
                if br.status != "running":
                    continue
                try:
                    row = _step(problem, br, t, log or measure, measure, switch_step)
                except RunDiverged as exc:
                    br.status, br.message = "diverged", str(exc)
                    continue
                if row is not None:
                    yield emit(row, "main")
            t += 1
            if bar:
                bar.update(1)
            if all(br.status != "running" for br in branches):
                break
        diverged = [br for br in branches if br.status == "diverged"]
        if diverged:
            finish("diverged", " ".join(br.message for br in diverged))
        else:
            finish("completed")
        (path / "checkpoint.npz").unlink(missing_ok=True)
    except RunDiverged as exc:  # phase 1 diverged: nothing to continue from
        base.status, base.message = "diverged", str(exc)
        finish("diverged", str(exc))
        (path / "checkpoint.npz").unlink(missing_ok=True)
    finally:
        writer.close()
        if bar:
            bar.close()


def run(cfg: RunConfig, *, store="runs", stop: threading.Event | None = None, resume: bool = True,
        progress: bool = False, on_row: Callable[[dict], None] | None = None) -> RunResult:
    """Run ``cfg`` to the end (or until ``stop``) and return it as stored."""
    for row in iter_run(cfg, store=store, stop=stop, resume=resume, progress=progress):
        if on_row is not None:
            on_row(row)
    store = store if isinstance(store, RunStore) else RunStore(store)
    return store.load(cfg)
