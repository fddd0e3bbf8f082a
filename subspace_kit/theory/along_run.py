"""Curvature at one model of a run: the Hessian's dominant subspace against the gradient
covariance's, and the Gauss-Newton / functional split of the Hessian.

Both take a ``problem`` of the experiment engine (``experiment.problem.Problem``: its config's
``k``, loss, training data and Hessian data) and a model at some step (e.g. from
``experiment.continuation.snapshots``).
"""
from __future__ import annotations

import torch

from ..eigen import top_eigen
from ..hessian import HessianOperator
from ..projection import alignment
from .angles import principal_angles
from .covariance import covariance_basis, minibatch_gradients
from .gauss_newton import FunctionalOperator, GaussNewtonOperator, subspace_curvature


def subspace_angles(problem, model, *, tracker=None, covariance_batches: int = 40, seed: int = 1) -> dict:
    """Compare, at ``model``, the Hessian's top-k eigenspace with the top-k eigenspace of the
    minibatch-gradient second moment E[g gᵀ] (from ``covariance_batches`` gradients).

    ``tracker``: a ``SubspaceTracker`` carried along a run (warm starts); ``None`` solves cold
    with the config's tracker. Returns ``{"sines", "max_sine", "mean_sine", "hessian_eigs",
    "covariance_eigs", "alignment_hessian", "alignment_covariance"}``: the sines of the principal
    angles (0: same direction), both spectra, and χ_k of the full gradient on each subspace."""
    from ..experiment.problem import full_loss_and_grad
    from ..experiment.trajectory import make_tracker

    cfg = problem.cfg
    tracker = tracker or make_tracker(cfg)
    res = tracker.update(HessianOperator(model, problem.loss_fn, problem.Xh, problem.Yh))
    G = minibatch_gradients(model, problem.loss_fn, problem.X, problem.Y, batch_size=cfg.batch_size,
                            num_batches=covariance_batches, seed=seed)
    C, values = covariance_basis(G, cfg.k)
    sines = principal_angles(res.vectors, C)
    g = full_loss_and_grad(model, problem.loss_fn, problem.X, problem.Y)[1]
    return {"sines": sines.tolist(), "max_sine": float(sines.max()), "mean_sine": float(sines.mean()),
            "hessian_eigs": res.values.tolist(), "covariance_eigs": values.tolist(),
            "alignment_hessian": alignment(g, res.vectors), "alignment_covariance": alignment(g, C)}


def curvature_split(problem, model, *, probes: int = 20, seed: int = 0) -> dict:
    """The Gauss-Newton / functional split ``H = G + F`` at ``model`` (Hessian data of ``problem``).

    Returns the top-k eigenvalues of H and of G, the sines of the principal angles between their
    top-k eigenspaces, the curvatures ``uᵢᵀ G uᵢ`` and ``uᵢᵀ F uᵢ`` along H's top-k
    eigenvectors uᵢ (they add up to λᵢ), and for A in H, G, F the share of its curvature energy
    ‖A‖²_F that the dominant subspace holds, ``‖A U‖²_F / ‖A‖²_F`` (the denominator estimated
    with ``probes`` Rademacher vectors: ‖A‖²_F = E‖A z‖²)."""
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
