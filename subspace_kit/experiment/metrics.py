"""The metric row a trajectory logs at one step, and the columns every row has.

A row is measured *before* the step at its index is applied, from the quantities that step
computed (its gradient ``g`` and update ``Δθ``, both (P,)). Columns (units):
``train_loss`` / ``train_acc`` over the whole training set; ``batch_loss`` of the step's batch;
``alignment_full`` / ``_batch`` / ``_update``: χ_k of the full gradient, the step's gradient and
the update on the basis U in use; ``alignment_base_update``: χ_k of the vector the projection acts
on (the base method's unprojected update; the gradient for SGD-type rules and
``project_on="gradient"``), logged since protocol 1's shipped runs were made; ``sharpness`` λ1 and ``eig_i`` λi of the last refresh;
``two_over_lr`` 2/η; ``update_norm`` ‖Δθ‖; ``eff_lr_dom`` / ``eff_lr_bulk`` ‖P Δθ‖/‖P g‖ for the
dominant and bulk projections P (η for plain SGD); ``tracker_residual`` the largest relative
residual of the last refresh; ``hvps`` Hessian-vector products so far; ``wall`` seconds;
``subspace_sin`` (runs with ``refresh_method="rotate"`` only) the sine of the largest angle between
the basis the cheap refresh gave at a certification step and the certified one.
"""
from __future__ import annotations

import math

import torch

from ..projection import alignment, bulk, dominant
from .config import RunConfig
from .problem import Problem, evaluate, full_loss_and_grad

BASE_COLUMNS = ["step", "phase", "mode", "train_loss", "train_acc", "batch_loss", "alignment_full",
                "alignment_batch", "alignment_update", "alignment_base_update", "sharpness", "two_over_lr", "update_norm",
                "eff_lr_dom", "eff_lr_bulk", "tracker_residual", "hvps", "wall"]
# Columns added after the shipped switch points and runs were written: a stored file may lack them
# (read as not measured).
LATE_COLUMNS = ("alignment_base_update",)
INT_COLUMNS = ("step", "hvps")  # every other numeric column is a float
TEXT_COLUMNS = ("phase", "mode")


def columns(cfg: RunConfig) -> list[str]:
    """Every column of a run's rows, in file order."""
    extra = ["subspace_sin"] if cfg.refresh_method == "rotate" else []
    return BASE_COLUMNS + extra + [f"eig_{i + 1}" for i in range(cfg.k)]


def complete(row: dict, cfg: RunConfig) -> dict:
    """``row`` with every column of ``cfg`` in order (NaN where not measured)."""
    return {c: row.get(c, math.nan) for c in columns(cfg)}


def measure_row(problem: Problem, traj, t: int, g: torch.Tensor, delta: torch.Tensor, batch_loss: float,
                measure: bool) -> dict:
    """The row of trajectory ``traj`` at step ``t``. Alignments and effective learning rates need
    a basis and are taken on projected trajectories at every row, on unprojected ones only when
    ``measure``. Returns a partial row (see ``complete``); a non-finite training loss raises
    ``RunDiverged`` through ``traj.diverged``."""
    cfg = problem.cfg
    loss, acc = evaluate(traj.model, problem.loss_fn, problem.X, problem.Y, problem.labels)
    if not math.isfinite(loss):
        raise traj.diverged(cfg, t, f"the training loss became {loss}")
    row = {"step": t, "mode": traj.mode, "train_loss": loss, "train_acc": acc, "batch_loss": batch_loss,
           "update_norm": float(delta.norm()), "two_over_lr": 2 / cfg.lr, "hvps": traj.hvps,
           "tracker_residual": traj.residual}
    if math.isfinite(traj.sin):
        row["subspace_sin"] = traj.sin
    U = traj.basis
    if U is not None and (traj.mode != "none" or measure):
        full_g = full_loss_and_grad(traj.model, problem.loss_fn, problem.X, problem.Y)[1]
        row["alignment_full"] = alignment(full_g, U)
        row["alignment_batch"] = alignment(g, U)
        row["alignment_update"] = alignment(delta, U)
        if traj.rule.acted_on is not None:
            row["alignment_base_update"] = alignment(traj.rule.acted_on, U)
        row["eff_lr_dom"] = norm_ratio(dominant(delta, U), dominant(g, U))
        row["eff_lr_bulk"] = norm_ratio(bulk(delta, U), bulk(g, U))
    if traj.eigs is not None:
        row["sharpness"] = float(traj.eigs[0])
        row.update({f"eig_{i + 1}": float(v) for i, v in enumerate(traj.eigs)})
    return row


def norm_ratio(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖a‖ / ‖b‖ (NaN when b = 0)."""
    nb = float(b.norm())
    return float(a.norm()) / nb if nb > 0 else float("nan")
