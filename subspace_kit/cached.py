"""The MLP results behind notebooks 05–12: one list of engine configs, read back or recomputed.

``CACHED`` maps a short name to the ``RunConfig`` of one run of the experiment engine. The runs
ship in ``data/runs/`` (made by ``scripts/make_cached_runs.py`` from this very list), so a
notebook shows them at once with ``load_cached(name)``; a checkout without them computes them
(3–10 minutes each on a busy 2-core machine) into the user's run store. ``smoke_config`` shrinks any of them
to a run of seconds, for ``SMOKE = True`` in CI.

All runs start from ``BASE``: the ``class`` preset (MNIST-5k, the paper's MLP, MSE, η = 0.01,
batch 50, k = 10, switch at step 2000, 1000 steps after it) with the Hessian on the first 500
training samples (the paper: all 5000) refreshed every 20 steps (the paper: every step), and χ
measured every 50 steps before the switch. Each entry says what it changes.

Beyond the engine's runs, a few measurements need the *model* at some step of a run, which the
store does not keep: ``snapshots`` replays a config's phase 1 (same data order, same minibatches)
and hands out the model at the steps asked; ``continue_from`` runs short continuations of such a
model (SGD, GD, Bulk-SGD with the Hessian's or with the gradient covariance's subspace) in
lock-step and yields metric rows like the engine's; ``subspace_angles`` compares the Hessian and
the gradient-covariance subspaces at a model, ``curvature_split`` its Gauss-Newton and
functional curvature.
"""
from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path
from typing import Iterable, Iterator

import torch

from .experiment import RunConfig, RunResult, RunStore, run
from .experiment.runner import _grad, apply_update  # the engine's own gradient and update
from .hessian import HessianOperator
from .projection import alignment, bulk
from .theory import covariance_basis, minibatch_gradients, principal_angles
from .theory._toy import one_thread  # torch on one thread: on a busy 2-core machine ~18x faster here
from .tracker import SubspaceTracker

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "runs"  # the store shipped with a checkout
USER_STORE = Path("runs")

# The class preset's values spelled out, so the store keys stay put if the preset changes.
BASE = RunConfig.preset("class", steps=3000, k=10, lr=0.01, batch_size=50, switch="step", switch_step=2000,
                        log_every=20, checkpoint_every=200, hessian_samples=500, refresh_every=20,
                        switch_check_every=50)

CACHED: dict[str, RunConfig] = {
    # 07, 10, 11, 12: SGD / Dom-SGD / Bulk-SGD, the main experiment at the kit's class size
    "sgd": BASE,
    # 07: full-batch GD with the same small step from the same initialisation, no switch
    "gd_small": BASE.replace(optimizer="gd", modes=("none",), steps=600, switch_step=600,
                             switch_check_every=25, log_every=25),
    # 08: GD with a large step on 500 samples (Hessian on all of them): progressive sharpening
    # up to 2/η = 80, then the edge of stability; GD / Dom-GD / Bulk-GD from step 400
    "eos": BASE.replace(optimizer="gd", lr=0.025, n_train=500, hessian_samples=None, steps=800,
                        switch_step=400, refresh_every=5, switch_check_every=20, log_every=10),
    # 09: SAM (ρ = 0.05), Dom-SAM, Bulk-SAM; the ascent step is never projected
    "sam": BASE.replace(optimizer="sam", rho=0.05),
    # 10: heavy-ball momentum (β = 0.9) and Adam, projection on the final update ...
    "momentum": BASE.replace(optimizer="momentum"),
    "adam": BASE.replace(optimizer="adam", lr=0.001),
    # ... or on the gradient fed to the optimizer (phase 1 identical to the runs above)
    "momentum_gradient": BASE.replace(optimizer="momentum", project_on="gradient", modes=("dom", "bulk")),
    "adam_gradient": BASE.replace(optimizer="adam", lr=0.001, project_on="gradient", modes=("dom", "bulk")),
    # 11a: interpolated updates α·dom + β·bulk after the switch (β > 1: faster flat directions)
    "interp_1_2": BASE.replace(modes=("interp",), interp_alpha=1.0, interp_beta=2.0),
    "interp_1_4": BASE.replace(modes=("interp",), interp_alpha=1.0, interp_beta=4.0),
    # ... and past the stability limit 2/(η λ_k+1) ≈ 9 of the bulk directions
    "interp_1_10": BASE.replace(modes=("interp",), interp_alpha=1.0, interp_beta=10.0),
    # 11d: the top-20 Hessian eigenvalues along plain SGD (the paper's Fig. 15), no switch
    "spectrum": BASE.replace(k=20, modes=("none",), steps=2000, switch_step=2000, switch_check_every=100),
    # 12: the main experiment with cross-entropy (η = 0.05: its sharpness is far below MSE's)
    "cross_entropy": BASE.replace(loss="cross_entropy", lr=0.05),
}
# Notebooks 01, 03, 04 and 14: the class preset itself (Hessian on the first 1000 samples, refreshed
# every 10 steps), the run the dashboard starts from.
CACHED["class"] = RunConfig.preset("class")
# Notebook 13: the CNN and the Transformer, the presets cnn-class and transformer-class (values spelled
# out, so the store keys stay put if the presets change); and both at the paper's η = 0.001 (the
# Transformer with SGD alone: it has not aligned by then, see the notebook).
CNN = RunConfig.preset("cnn-class", dataset="fashion-mnist-5k", model="cnn", n_train=1000, steps=700, k=10,
                       lr=0.01, batch_size=50, switch="step", switch_step=400, hessian_samples=100,
                       refresh_every=25, switch_check_every=100, log_every=25, checkpoint_every=100)
TRANSFORMER = RunConfig.preset("transformer-class", dataset="sst2-1k", data_source="substitute",
                               model="transformer", steps=1250, k=2, lr=0.01, batch_size=50, switch="step",
                               switch_step=750, hessian_samples=200, refresh_every=20, switch_check_every=125,
                               log_every=50, checkpoint_every=250)
CACHED.update({
    "cnn": CNN,
    "transformer": TRANSFORMER,
    "cnn_paper_lr": CNN.replace(lr=0.001),
    "transformer_paper_lr": TRANSFORMER.replace(lr=0.001, modes=("none",), steps=1500, switch_step=1500),
})


def smoke_config(cfg: RunConfig | str) -> RunConfig:
    """A seconds-long version of ``cfg`` (or of ``CACHED[cfg]``): same optimizer, loss, modes and
    step size, on 300 samples with a 3-dimensional subspace and 30 steps (switch at 20, or none
    if ``cfg`` has none); the subspace is computed only a few times."""
    cfg = CACHED[cfg] if isinstance(cfg, str) else cfg
    no_switch = cfg.switch == "step" and cfg.switch_step >= cfg.steps  # phase 1 only: keep it so
    return cfg.replace(n_train=300, hessian_samples=100, k=min(cfg.k, 3), steps=30, switch="step",
                       switch_step=30 if no_switch else 20, switch_check_every=20, refresh_every=10,
                       log_every=5, checkpoint_every=20, max_switch_step=None)


def config(name: str, *, smoke: bool = False) -> RunConfig:
    """``CACHED[name]``, or its ``smoke_config``."""
    if name not in CACHED:
        raise ValueError(f"name must be one of {', '.join(map(repr, CACHED))}; got {name!r}")
    return smoke_config(name) if smoke else CACHED[name]


def find(cfg: RunConfig, stores: Iterable) -> RunResult | None:
    """The first finished run of ``cfg`` (completed, or ended by a divergence) in ``stores``."""
    for store in stores:
        if store is None:
            continue
        result = RunStore(store).load(cfg)
        if result is not None and result.status in ("completed", "diverged"):
            return result
    return None


def load_cached(name: str, *, smoke: bool = False, store=None, progress: bool = False) -> RunResult:
    """The run ``name`` of ``CACHED`` (with ``smoke``: its ``smoke_config``).

    Read from ``store`` or the shipped ``data/runs`` when there; otherwise computed with the
    engine into ``store`` (default ``runs/``; a temporary folder for smoke runs), on one thread.
    """
    cfg = config(name, smoke=smoke)
    found = find(cfg, [store, None if smoke else SHIPPED])
    if found is not None:
        return found
    if store is None:
        store = tempfile.mkdtemp(prefix="subspace_kit_smoke_") if smoke else USER_STORE
    with one_thread():
        return run(cfg, store=store, progress=progress)


def compute_cached(name: str, store=SHIPPED) -> tuple[RunResult, float]:
    """Run ``CACHED[name]`` into ``store`` (the shipped one by default); returns the result and
    the wall seconds. A finished run in ``store`` is returned as it is (0 seconds)."""
    cfg = config(name)
    start = time.perf_counter()
    with one_thread():
        result = run(cfg, store=store)
    (result.path / "checkpoint.npz").unlink(missing_ok=True)
    return result, time.perf_counter() - start


# ---------------------------------------------------------------------------- models along a run
def snapshots(cfg: RunConfig, steps: Iterable[int]) -> Iterator[tuple[int, "Problem", torch.nn.Module]]:
    """Replay phase 1 of ``cfg`` (its base optimizer, its data and minibatch order) and yield
    ``(step, problem, model)`` at each of ``steps`` (sorted; each ≤ the switch step). The model is
    the one the engine's run of ``cfg`` had before applying that step; it keeps training after
    it is yielded, so copy it (``copy.deepcopy``) to keep it."""
    from .experiment.runner import Problem, _new_branch, _step  # the engine's own step

    steps = sorted(int(s) for s in steps)
    if cfg.switch == "step" and steps and steps[-1] > cfg.switch_step:
        raise ValueError(f"steps must be <= the switch step {cfg.switch_step}; got {steps[-1]}")
    problem = Problem.build(cfg)
    branch = _new_branch(problem, "none", torch.Generator(device="cpu").manual_seed(cfg.seed))
    t = 0
    for target in steps:
        while t < target:
            _step(problem, branch, t, False, False, None)
            t += 1
        yield target, problem, branch.model


# name -> (update, subspace removed from each step)
CONTINUATIONS = {
    "sgd": ("sgd", None),
    "gd": ("gd", None),
    "bulk_hessian": ("sgd", "hessian"),
    "bulk_covariance": ("sgd", "covariance"),
}
CONTINUATION_LABELS = {"sgd": "SGD", "gd": "GD", "bulk_hessian": "Bulk-SGD (Hessian subspace)",
                       "bulk_covariance": "Bulk-SGD (gradient-covariance subspace)"}


def continue_from(problem, model, names=("sgd", "gd"), *, steps: int, start_step: int = 0,
                  measure_every: int = 20, refresh_every: int = 20, covariance_batches: int = 40,
                  seed: int = 1) -> Iterator[dict]:
    """Continue ``model`` (left unchanged: each continuation trains a copy) in lock-step, one
    continuation per name of ``CONTINUATIONS``, for ``steps`` steps with the config's η, batch
    size and k. SGD-type continuations draw the same minibatches (from ``seed``).

    Every ``measure_every`` steps a row ``{"step", "phase": "main", "mode": name, "train_loss",
    "train_acc", "alignment_full", "alignment_covariance"}`` is yielded: χ_k of the full
    gradient on the Hessian's top-k (tracked, warm-started) and on the gradient covariance's
    top-k (from ``covariance_batches`` minibatch gradients, first order only; 0: not measured,
    NaN). Bulk-SGD
    refreshes its subspace every ``refresh_every`` steps. Steps are numbered from
    ``start_step``.
    """
    from .losses import accuracy

    unknown = [n for n in names if n not in CONTINUATIONS]
    if unknown:
        raise ValueError(f"names must be among {', '.join(CONTINUATIONS)}; got {unknown}")
    cfg = problem.cfg
    if "bulk_covariance" in names and covariance_batches < cfg.k:
        raise ValueError(f"covariance_batches must be >= k={cfg.k} for 'bulk_covariance'; got {covariance_batches}")
    # One cold eigensolve at the common start; every continuation then tracks from it.
    first = SubspaceTracker(cfg.k, oversample=cfg.oversample, tol=cfg.tracker_tol)
    first.update(HessianOperator(model, problem.loss_fn, problem.Xh, problem.Yh))
    branches = {}
    for name in names:
        tracker = SubspaceTracker(cfg.k, oversample=cfg.oversample, tol=cfg.tracker_tol)
        tracker.restore(first._block.clone(), first.result.values)
        branches[name] = dict(model=copy.deepcopy(model), gen=torch.Generator().manual_seed(seed),
                              tracker=tracker, basis=None)

    def hessian_basis(br):
        H = HessianOperator(br["model"], problem.loss_fn, problem.Xh, problem.Yh)
        return br["tracker"].update(H).vectors

    def covariance_basis_of(br, t):
        G = minibatch_gradients(br["model"], problem.loss_fn, problem.X, problem.Y,
                                batch_size=cfg.batch_size, num_batches=covariance_batches, seed=seed + t)
        return covariance_basis(G, cfg.k)[0]

    for t in range(steps + 1):
        for name, br in branches.items():
            update, removed = CONTINUATIONS[name]
            m = br["model"]
            if t % measure_every == 0 or t == steps:
                U = hessian_basis(br)
                loss, g_full = _grad(m, problem.loss_fn, problem.X, problem.Y)
                with torch.no_grad():
                    acc = accuracy(m(problem.X), problem.labels)
                yield {"step": start_step + t, "phase": "main", "mode": name, "train_loss": loss,
                       "train_acc": acc, "alignment_full": alignment(g_full, U),
                       "alignment_covariance": (alignment(g_full, covariance_basis_of(br, t))
                                                if covariance_batches else float("nan"))}
                if removed == "hessian":
                    br["basis"] = U
            if t == steps:
                continue
            if removed is not None and t % refresh_every == 0:
                if removed == "covariance":
                    br["basis"] = covariance_basis_of(br, t)
                elif t % measure_every != 0:
                    br["basis"] = hessian_basis(br)
            if update == "gd":
                _, g = _grad(m, problem.loss_fn, problem.X, problem.Y)
            else:
                idx = torch.randint(len(problem.X), (cfg.batch_size,), generator=br["gen"])
                _, g = _grad(m, problem.loss_fn, problem.X[idx], problem.Y[idx])
            if removed is not None:
                g = bulk(g, br["basis"])
            apply_update(m, cfg.lr * g)


def subspace_angles(problem, model, *, tracker: SubspaceTracker | None = None, covariance_batches: int = 40,
                    seed: int = 1) -> dict:
    """Compare, at ``model``, the Hessian's top-k eigenspace with the top-k eigenspace of the
    minibatch-gradient second moment E[g gᵀ] (from ``covariance_batches`` gradients).

    ``tracker``: a ``SubspaceTracker`` carried along a run (warm starts); ``None`` solves cold.
    Returns ``{"sines", "max_sine", "mean_sine", "hessian_eigs", "covariance_eigs",
    "alignment_hessian", "alignment_covariance"}``: the sines of the principal angles (0: same
    direction), both spectra, and χ_k of the full gradient on each subspace.
    """
    cfg = problem.cfg
    tracker = tracker or SubspaceTracker(cfg.k, oversample=cfg.oversample, tol=cfg.tracker_tol)
    res = tracker.update(HessianOperator(model, problem.loss_fn, problem.Xh, problem.Yh))
    G = minibatch_gradients(model, problem.loss_fn, problem.X, problem.Y, batch_size=cfg.batch_size,
                            num_batches=covariance_batches, seed=seed)
    C, values = covariance_basis(G, cfg.k)
    sines = principal_angles(res.vectors, C)
    _, g = _grad(model, problem.loss_fn, problem.X, problem.Y)
    return {"sines": sines.tolist(), "max_sine": float(sines.max()), "mean_sine": float(sines.mean()),
            "hessian_eigs": res.values.tolist(), "covariance_eigs": values.tolist(),
            "alignment_hessian": alignment(g, res.vectors), "alignment_covariance": alignment(g, C)}


def curvature_split(problem, model, *, probes: int = 20, seed: int = 0) -> dict:
    """The Gauss-Newton / functional split ``H = G + F`` at ``model`` (Hessian data of ``problem``).

    Returns the top-k eigenvalues of H and of G, the sines of the principal angles between their
    top-k eigenspaces, the curvatures ``uᵢᵀ G uᵢ`` and ``uᵢᵀ F uᵢ`` along H's top-k
    eigenvectors uᵢ (they add up to λᵢ), and for A in H, G, F the share of its curvature energy
    ‖A‖²_F that the dominant subspace holds, ``‖A U‖²_F / ‖A‖²_F`` (the denominator estimated
    with ``probes`` Rademacher vectors: ‖A‖²_F = E‖A z‖²).
    """
    from .eigen import top_eigen
    from .theory import FunctionalOperator, GaussNewtonOperator, subspace_curvature

    k = problem.cfg.k
    H = HessianOperator(model, problem.loss_fn, problem.Xh, problem.Yh)
    G = GaussNewtonOperator(model, problem.loss_fn, problem.Xh, problem.Yh)
    F = FunctionalOperator(H, G)
    top_h, top_g = top_eigen(H, k), top_eigen(G, k)
    U = top_h.vectors
    gen = torch.Generator().manual_seed(seed)
    Z = (2.0 * torch.randint(0, 2, (U.shape[0], probes), generator=gen) - 1.0).to(U.dtype)
    energy = {}
    for name, A in (("H", H), ("G", G), ("F", F)):
        total = float((A @ Z).pow(2).sum()) / probes
        energy[name] = float((A @ U).pow(2).sum()) / total
    return {"hessian_eigs": top_h.values.tolist(), "gauss_newton_eigs": top_g.values.tolist(),
            "sines": principal_angles(U, top_g.vectors).tolist(),
            "gauss_newton_along_u": subspace_curvature(G, U).tolist(),
            "functional_along_u": subspace_curvature(F, U).tolist(), "energy_share": energy, "probes": probes}
