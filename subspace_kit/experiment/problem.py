"""What one config trains on: its data, loss and model, and the engine's gradient, evaluation and
in-place update on flat parameter vectors (every tensor on the config's device).

``Problem.build(cfg)`` loads the data in a fixed class-mixed order (the first ``n_train`` samples;
the Hessian uses the first ``hessian_samples`` of them) and builds the model. A flat vector has
one entry per trainable parameter, in ``model.parameters()`` order: shape ``(P,)``.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import torch

from ..datasets import load as load_dataset
from ..losses import accuracy, get_loss
from ..models import build_model
from .config import RunConfig, resolve_device

EVAL_CHUNK = 2500  # samples per forward pass when a quantity is taken over the whole data set
DATA_ORDER_SEED = 12345  # fixed shuffle so "the first n samples" are class-mixed in every run


@dataclass
class Problem:
    """Data, loss and a model factory for one config (shared by all trajectories of a run).

    ``X`` (n, ...) inputs, ``Y`` (n, C) float targets, ``labels`` (n,) class indices; ``Xh``,
    ``Yh`` the first ``hessian_samples`` of them (the data the Hessian is taken on)."""

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
        not available or ``k``/``batch_size`` do not fit the model/data."""
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
        num_params = sum(p.numel() for p in trainable(model))
        if cfg.k >= num_params:
            raise ValueError(f"k must be smaller than the number of parameters ({num_params}); got k={cfg.k}")
        return cls(cfg, X, Y, labels, X[:nh], Y[:nh], get_loss(cfg.loss), model, data.source)

    def new_model(self) -> torch.nn.Module:
        """A fresh copy of the initial model (seeded by ``cfg.seed``)."""
        return copy.deepcopy(self.template)


def trainable(model: torch.nn.Module) -> list[torch.Tensor]:
    """The parameters the engine trains, in the order of every flat vector."""
    return [p for p in model.parameters() if p.requires_grad]


def flatten(tensors) -> torch.Tensor:
    """Concatenate tensors into one flat vector (P,)."""
    return torch.cat([t.reshape(-1) for t in tensors])


def set_flat(params: list[torch.Tensor], flat: torch.Tensor) -> None:
    """Copy the flat vector ``flat`` (P,) into ``params`` in place."""
    with torch.no_grad():
        i = 0
        for p in params:
            p.copy_(flat[i:i + p.numel()].view_as(p))
            i += p.numel()


def apply_update(model: torch.nn.Module, delta: torch.Tensor) -> None:
    """θ ← θ − Δθ in place (bumps the parameters' versions, so cached Hessian graphs refresh)."""
    with torch.no_grad():
        i = 0
        for p in trainable(model):
            p.sub_(delta[i:i + p.numel()].view_as(p))
            i += p.numel()


def loss_and_grad(model, loss_fn, X, Y) -> tuple[float, torch.Tensor]:
    """Mean loss on ``(X, Y)`` in one pass, and its gradient as a flat vector (P,)."""
    params = trainable(model)
    with torch.enable_grad():
        loss = loss_fn(model(X), Y)
        grads = torch.autograd.grad(loss, params)
    return float(loss.detach()), flatten(grads)


def full_loss_and_grad(model, loss_fn, X, Y) -> tuple[float, torch.Tensor]:
    """Mean loss and gradient over all of ``X``, in chunks of ``EVAL_CHUNK`` samples (memory)."""
    total, loss = None, 0.0
    for s in range(0, len(X), EVAL_CHUNK):
        chunk_loss, g = loss_and_grad(model, loss_fn, X[s:s + EVAL_CHUNK], Y[s:s + EVAL_CHUNK])
        weight = min(len(X) - s, EVAL_CHUNK) / len(X)
        loss += chunk_loss * weight
        total = g * weight if total is None else total + g * weight
    return loss, total


@torch.no_grad()
def evaluate(model, loss_fn, X, Y, labels) -> tuple[float, float]:
    """Mean loss and accuracy (fraction in [0, 1]) over all of ``X``, in chunks."""
    loss, correct = 0.0, 0.0
    for s in range(0, len(X), EVAL_CHUNK):
        out = model(X[s:s + EVAL_CHUNK])
        m = len(out)
        loss += float(loss_fn(out, Y[s:s + EVAL_CHUNK])) * m
        correct += accuracy(out, labels[s:s + EVAL_CHUNK]) * m
    return loss / len(X), correct / len(X)
