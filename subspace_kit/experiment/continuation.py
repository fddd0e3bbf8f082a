"""Models along a run, and short continuations of them: for measurements the run store does not
keep (the model itself at some step).

``snapshots(cfg, steps)`` replays phase 1 of ``cfg`` with the engine's own ``Trajectory`` (same
data order, same minibatches; refreshes skipped: they do not move an unprojected trajectory) and
hands out the model at each step asked; a step that is the config's stored switch point is read
from it instead of replayed. ``continue_from`` continues one model several ways in lock-step
(SGD, GD, Bulk-SGD on the Hessian's or on the gradient covariance's subspace), each a
``Trajectory``, and yields rows like the engine's.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import torch

from ..projection import alignment
from ..theory import covariance_basis, minibatch_gradients
from ..threads import engine_threads, policy_threads
from .config import RunConfig
from .optimizers import UpdateRule
from .problem import Problem, evaluate, full_loss_and_grad
from .run_files import RunFiles, as_store
from .trajectory import Trajectory


def snapshots(cfg: RunConfig, steps: Iterable[int], *, store=None) -> Iterator[tuple[int, Problem, torch.nn.Module]]:
    """Yield ``(step, problem, model)`` at each of ``steps`` (sorted; each ≤ the switch step): the
    model the engine's run of ``cfg`` has before applying that step. It keeps training after it
    is yielded, so copy it (``copy.deepcopy``) to keep it. The switch point of ``cfg`` (in
    ``store`` or the shipped runs) stands in for replaying phase 1 up to it."""
    steps = sorted(int(s) for s in steps)
    if cfg.switch == "step" and steps and steps[-1] > cfg.switch_step:
        raise ValueError(f"steps must be <= the switch step {cfg.switch_step}; got {steps[-1]}")
    problem = Problem.build(cfg)
    traj = Trajectory.start(problem)
    point = RunFiles(as_store(store), cfg).find_switch_point(policy_threads(), problem)
    t = 0
    for target in steps:
        if point is not None and target == point.t and t < target:
            traj.load_state_dict(point.base)
            t = target
        with engine_threads():  # the engine's thread count, as in the run (and its switch point)
            while t < target:
                traj.step(problem, t)
                t += 1
        yield target, problem, traj.model


# name -> (update rule, subspace removed from each step)
CONTINUATIONS = {
    "sgd": ("sgd", None),
    "gd": ("gd", None),
    "bulk_hessian": ("sgd", "hessian"),
    "bulk_covariance": ("sgd", "covariance"),
}
CONTINUATION_LABELS = {"sgd": "SGD", "gd": "GD", "bulk_hessian": "Bulk-SGD (Hessian subspace)",
                       "bulk_covariance": "Bulk-SGD (gradient-covariance subspace)"}


def continue_from(problem: Problem, model: torch.nn.Module, names=("sgd", "gd"), *, steps: int, start_step: int = 0,
                  measure_every: int = 20, refresh_every: int = 20, covariance_batches: int = 40,
                  seed: int = 1) -> Iterator[dict]:
    """Continue ``model`` (left unchanged: each continuation trains a copy) in lock-step, one
    continuation per name of ``CONTINUATIONS``, for ``steps`` steps with the config's η, batch
    size and k. SGD-type continuations draw the same minibatches (from ``seed``).

    Every ``measure_every`` steps (and at the last) a row ``{"step", "phase": "main", "mode":
    name, "train_loss", "train_acc", "alignment_full", "alignment_covariance"}`` is yielded: χ_k
    of the full gradient on the Hessian's top-k (tracked, warm-started) and on the gradient
    covariance's top-k (from ``covariance_batches`` minibatch gradients, first order only; 0:
    not measured, NaN). Bulk continuations refresh their subspace every ``refresh_every`` steps.
    Steps are numbered from ``start_step``."""
    unknown = [n for n in names if n not in CONTINUATIONS]
    if unknown:
        raise ValueError(f"names must be among {', '.join(CONTINUATIONS)}; got {unknown}")
    cfg = problem.cfg
    if "bulk_covariance" in names and covariance_batches < cfg.k:
        raise ValueError(f"covariance_batches must be >= k={cfg.k} for 'bulk_covariance'; got {covariance_batches}")
    # One cold eigensolve at the common start; every continuation then tracks from it.
    origin = Trajectory.start(problem, "none", torch.Generator(device="cpu").manual_seed(seed))
    origin.model.load_state_dict(model.state_dict())
    origin.refresh(problem, start_step)
    runs = {}
    for name in names:
        update, removed = CONTINUATIONS[name]
        runs[name] = origin.fork(problem, "none" if removed is None else "bulk")
        runs[name].rule = UpdateRule.from_config(cfg.replace(optimizer=update))

    def covariance_of(traj, t):
        G = minibatch_gradients(traj.model, problem.loss_fn, problem.X, problem.Y, batch_size=cfg.batch_size,
                                num_batches=covariance_batches, seed=seed + t)
        return covariance_basis(G, cfg.k)[0]

    covariance = {}
    for t in range(steps + 1):
        for name, traj in runs.items():
            removed = CONTINUATIONS[name][1]
            measure = t % measure_every == 0 or t == steps
            if measure or (removed == "hessian" and t % refresh_every == 0):
                traj.refresh(problem, start_step + t)
            if measure:
                loss, acc = evaluate(traj.model, problem.loss_fn, problem.X, problem.Y, problem.labels)
                g_full = full_loss_and_grad(traj.model, problem.loss_fn, problem.X, problem.Y)[1]
                chi_cov = alignment(g_full, covariance_of(traj, t)) if covariance_batches else float("nan")
                yield {"step": start_step + t, "phase": "main", "mode": name, "train_loss": loss, "train_acc": acc,
                       "alignment_full": alignment(g_full, traj.basis), "alignment_covariance": chi_cov}
            if t == steps:
                continue
            if removed == "covariance" and t % refresh_every == 0:
                covariance[name] = covariance_of(traj, t)
            traj.step(problem, start_step + t, basis=covariance.get(name))
