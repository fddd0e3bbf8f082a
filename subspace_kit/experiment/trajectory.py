"""One trajectory of a run: parameters, update-rule state, subspace tracker and minibatch stream.

``Trajectory.start(problem)`` is the run's phase 1 at step 0; ``fork(problem, mode)`` a new
trajectory exactly where this one is (phase 2 forks one per mode). ``step`` applies one update
(projected for modes ``dom``/``bulk``/``interp``), ``refresh`` re-solves the dominant subspace on
the Hessian of the problem's Hessian data. ``state_dict`` / ``load_state_dict`` hold the whole
state as tensors, numbers and strings (saved as npz without pickle): the checkpoint format of a
trajectory is defined here, beside the state it saves.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..hessian import HessianOperator
from ..theory.angles import largest_sine
from ..tracker import SubspaceTracker
from . import metrics
from .config import RunConfig
from .optimizers import UpdateRule, make_projection
from .problem import Problem, apply_update, evaluate, flatten, set_flat, trainable


class RunDiverged(RuntimeError):
    """A trajectory blew up (non-finite loss, update or curvature); the message names the step,
    what happened and the likely cause."""


def make_tracker(cfg: RunConfig) -> SubspaceTracker:
    """The subspace tracker of ``cfg`` (the one place a config becomes a tracker).

    ``refresh_method="full"`` (every run of protocol 1) keeps the randomized acceptance check
    (``probes=4``) that every shipped run and switch point was computed with: the tracker's sound
    default (explicit residuals, ``probes=0``) costs one more block per refresh and changes those
    runs' numbers. Measured in benchmarks/results/refresh.md: 0 of 26 updates accepted by the
    randomized check had a true residual above the tolerance. ``refresh_method="rotate"`` runs
    are new: their full updates (phase-1 checks, certifications) accept on explicit residuals."""
    probes = 0 if cfg.refresh_method == "rotate" else 4
    return SubspaceTracker(cfg.k, oversample=cfg.oversample, tol=cfg.tracker_tol, probes=probes)


@dataclass
class Trajectory:
    """One trajectory: its model, update rule (with state), subspace tracker and minibatch RNG.

    ``hvps`` counts Hessian-vector products along it (a fork starts with its source's count);
    ``eigs`` (k,) and ``residual`` are those of the last refresh; ``sin`` the sine of the largest
    angle between the rotated and the certified basis when this step's refresh certified (NaN
    otherwise); ``status`` is ``running`` until
    the trajectory ends (``completed``, ``diverged`` with ``message``)."""

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
    sin: float = math.nan

    @classmethod
    def start(cls, problem: Problem, mode: str = "none", gen: torch.Generator | None = None) -> "Trajectory":
        """A trajectory at step 0 of ``problem``: the initial model, empty rule state, no basis,
        minibatches from a host generator seeded with ``cfg.seed`` (unless ``gen`` is given)."""
        cfg = problem.cfg
        gen = gen if gen is not None else torch.Generator(device="cpu").manual_seed(cfg.seed)
        return cls(mode, problem.new_model(), UpdateRule.from_config(cfg), make_tracker(cfg), gen)

    @property
    def basis(self) -> torch.Tensor | None:
        """The orthonormal basis (P, k) in use, or ``None`` before the first refresh."""
        return self.tracker.basis

    # ------------------------------------------------------------------ moving
    def refresh(self, problem: Problem, t: int, how: str = "full") -> None:
        """Re-solve the top-k subspace at the current parameters (warm-started): ``"full"`` a
        tracker update to tolerance; ``"rotate"`` ``cfg.refresh_columns`` products (no residuals);
        ``"certify"`` the rotation this step would have made, then a full update, recording
        ``sin`` between the two. A solver failure on blown-up parameters (non-finite curvature)
        raises ``RunDiverged``; any other error propagates (the run then fails with its message)."""
        H = HessianOperator(self.model, problem.loss_fn, problem.Xh, problem.Yh)
        columns = problem.cfg.refresh_columns
        try:
            if how == "certify":
                rotated = self.tracker.update(H, refresh="rotate", columns=columns)
                self.hvps += rotated.matvecs
                result = self.tracker.update(H)
                self.sin = largest_sine(rotated.vectors, result.vectors)
            elif how == "rotate":
                result = self.tracker.update(H, refresh="rotate", columns=columns)
            else:
                result = self.tracker.update(H)
        except (torch.linalg.LinAlgError, ValueError) as exc:
            loss, _ = evaluate(self.model, problem.loss_fn, problem.X, problem.Y, problem.labels)
            blown_up = (isinstance(exc, torch.linalg.LinAlgError) or "non-finite" in str(exc)
                        or not math.isfinite(loss))
            if not blown_up:
                raise
            raise self.diverged(problem.cfg, t, f"the Hessian eigensolver failed ({exc}) with the training "
                                                f"loss at {loss:.3g}") from exc
        self.hvps += result.matvecs
        self.eigs, self.residual = result.values, float(result.residuals.max())

    def step(self, problem: Problem, t: int, *, refresh: bool | str | None = False, log: bool = False,
             measure: bool = False, basis: torch.Tensor | None = None) -> dict | None:
        """Advance by one step at index ``t`` (refreshing the basis first when ``refresh``:
        ``True`` or ``"full"``, ``"rotate"``, ``"certify"``, see ``refresh``;
        ``basis`` (P, k): project on this orthonormal basis instead of the tracker's);
        return the metric row (``metrics.measure_row``; alignments on an unprojected trajectory
        only when ``measure``) when ``log`` or ``measure``, else ``None``. ``RunDiverged`` when
        the loss or the update is non-finite."""
        cfg = problem.cfg
        self.sin = math.nan
        if refresh:
            self.refresh(problem, t, "full" if refresh is True else refresh)
        batch_loss, g = self.rule.gradient(problem, self.model, self.gen)
        project = make_projection(self.mode, self.basis if basis is None else basis, cfg.interp_alpha, cfg.interp_beta)
        delta = self.rule.step(g, project)
        if not (math.isfinite(batch_loss) and torch.isfinite(delta).all()):
            what = (f"the loss became {batch_loss}" if not math.isfinite(batch_loss)
                    else f"the update became non-finite (minibatch loss {batch_loss:.3g})")
            raise self.diverged(cfg, t, what)
        row = metrics.measure_row(problem, self, t, g, delta, batch_loss, measure) if (log or measure) else None
        apply_update(self.model, delta)
        return row

    def fork(self, problem: Problem, mode: str) -> "Trajectory":
        """A new trajectory of ``mode`` starting exactly where this one is (parameters, rule
        state, RNG, tracker, counters)."""
        gen = torch.Generator(device="cpu")
        gen.set_state(self.gen.get_state())
        other = Trajectory.start(problem, mode, gen)
        other.model.load_state_dict(self.model.state_dict())
        other.rule.load_state_dict(self.rule.state_dict())
        other.tracker.load_state_dict({k: (v.clone() if isinstance(v, torch.Tensor) else v)
                                       for k, v in self.tracker.state_dict().items()})
        other.eigs, other.residual, other.hvps = self.eigs, self.residual, self.hvps
        return other

    def diverged(self, cfg: RunConfig, t: int, what: str) -> RunDiverged:
        """``what`` happened at step ``t``: the error, naming the likely cause (the step size
        against the curvature)."""
        sharp = float(self.eigs[0]) if self.eigs is not None else float("nan")
        curvature = f"2/lr={2 / cfg.lr:.3g}" + (f", last measured sharpness λ1≈{sharp:.3g}" if math.isfinite(sharp) else "")
        if self.mode == "interp" and max(abs(cfg.interp_alpha), abs(cfg.interp_beta)) > 1:
            cause = (f"the interpolation weights (interp_alpha={cfg.interp_alpha:g}, interp_beta={cfg.interp_beta:g}) "
                     f"multiply the step size lr={cfg.lr:g}, likely too much for the curvature ({curvature})")
        else:
            cause = f"the learning rate lr={cfg.lr:g} is likely too large for the curvature ({curvature})"
        return RunDiverged(f"{cfg.label(self.mode)} diverged at step {t}: {what}; {cause}.")

    # ------------------------------------------------------------------ saving
    def state_dict(self, *, with_basis: bool = True) -> dict:
        """The whole state: ``params`` (P,), ``gen`` (RNG bytes), ``hvps``, ``status``,
        ``message``, ``residual``, ``eigs`` (k,) if measured, ``rule`` (the update rule's tensors)
        and ``tracker`` (``SubspaceTracker.state_dict``). ``with_basis=False`` leaves out the
        tracker's basis and eigenvalues in use (a switch point: phase 2 refreshes every
        trajectory at its first step, so only the carried block, the warm start, is read)."""
        tracker = self.tracker.state_dict()
        if not with_basis and tracker:
            tracker = {k: v for k, v in tracker.items() if k not in ("basis", "values")}
        state = {"params": flatten(p.detach() for p in trainable(self.model)), "gen": self.gen.get_state(),
                 "hvps": self.hvps, "status": self.status, "message": self.message, "residual": self.residual,
                 "rule": self.rule.state_dict(), "tracker": tracker}
        if self.eigs is not None and with_basis:
            state["eigs"] = self.eigs
        return state

    def load_state_dict(self, state: dict) -> None:
        """Put this trajectory where ``state_dict()`` left it; host arrays go to the run's device."""
        device = next(iter(trainable(self.model))).device
        tensor = lambda v: torch.from_numpy(np.asarray(v)).to(device)  # noqa: E731
        set_flat(trainable(self.model), tensor(state["params"]))
        self.gen.set_state(torch.from_numpy(np.asarray(state["gen"])).cpu())
        self.hvps, self.residual = int(state["hvps"]), float(state["residual"])
        self.status, self.message = str(state["status"]), str(state["message"])
        self.rule.load_state_dict({k: tensor(v) for k, v in state.get("rule", {}).items()})
        tracker = dict(state.get("tracker", {}))
        if tracker:
            block = tensor(tracker["block"])
            if "basis" not in tracker:  # a switch point: the basis is re-solved before it is read
                tracker["basis"] = block[:, :self.tracker.k]
                tracker["values"] = torch.full((self.tracker.k,), math.nan, dtype=block.dtype, device=device)
            tracker = {k: (tensor(v) if k in ("block", "basis", "values") else int(v)) for k, v in tracker.items()}
        self.tracker.load_state_dict(tracker)
        self.eigs = tensor(state["eigs"]) if "eigs" in state else None
