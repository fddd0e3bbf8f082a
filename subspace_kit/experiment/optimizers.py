"""Update rules on flat parameter vectors, with a projection applied where the config says.

Every rule maps the gradient it is fed, ``g`` (P,), to a step ``Δθ`` with θ ← θ − Δθ:

- ``sgd`` / ``gd`` / ``sam``: Δθ = η g  (for SAM, ``g`` is the gradient at the ascent point,
  which ``gradient`` computes; the ascent itself is not projected).
- ``momentum`` (heavy ball, PyTorch convention): b ← β b + g,  Δθ = η b.
- ``adam``: m ← β1 m + (1−β1) g,  v ← β2 v + (1−β2) g²,  Δθ = η m̂ / (√v̂ + ε).

The projection ``project`` (identity, dominant, bulk or interpolated; see ``projection.py``)
acts on the final update (``project_on="update"``, optimizer state unprojected) or on the
gradient fed to the optimizer (``project_on="gradient"``). For SGD, GD and SAM the two agree.

Which gradient a rule is fed is part of the rule: ``gradient`` draws the minibatch (SGD-type
rules), takes the full-batch gradient (GD) or the gradient at SAM's ascent point.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..projection import bulk, dominant, interpolate
from .config import RunConfig
from .problem import Problem, flatten, full_loss_and_grad, loss_and_grad, set_flat, trainable

Projection = Callable[[torch.Tensor], torch.Tensor]


def make_projection(mode: str, U: torch.Tensor | None, alpha: float | None = None,
                    beta: float | None = None) -> Projection:
    """The map ``g -> projected g`` for ``mode`` with the orthonormal basis ``U`` (P, k)."""
    if mode == "none":
        return lambda g: g
    if mode == "dom":
        return lambda g: dominant(g, U)
    if mode == "bulk":
        return lambda g: bulk(g, U)
    return lambda g: interpolate(g, U, alpha, beta)


class UpdateRule:
    """The base optimizer's state and step, on flat vectors.

    ``gradient(problem, model, gen)`` returns the loss and gradient the rule is fed;
    ``step(g, project)`` returns Δθ (P,) and advances the state; ``acted_on`` is then the vector
    the projection was applied to (the unprojected update, or the gradient with
    ``project_on="gradient"`` and for SGD-type rules), logged as ``alignment_base_update``. ``state_dict`` /
    ``load_state_dict`` hold plain tensors (saved without pickle by the run store).
    """

    def __init__(self, optimizer: str, *, lr: float, momentum: float = 0.9, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8, project_on: str = "update", batch_size: int = 50,
                 rho: float = 0.05):
        self.optimizer, self.lr, self.momentum = optimizer, lr, momentum
        self.beta1, self.beta2, self.eps, self.project_on = beta1, beta2, eps, project_on
        self.batch_size, self.rho = batch_size, rho
        self.state: dict[str, torch.Tensor] = {}
        self.acted_on: torch.Tensor | None = None

    @classmethod
    def from_config(cls, cfg: RunConfig) -> "UpdateRule":
        """The rule of ``cfg`` (the one place a config becomes an update rule)."""
        return cls(cfg.optimizer, lr=cfg.lr, momentum=cfg.momentum, beta1=cfg.adam_beta1, beta2=cfg.adam_beta2,
                   eps=cfg.adam_eps, project_on=cfg.project_on, batch_size=cfg.batch_size, rho=cfg.rho)

    def gradient(self, problem: Problem, model: torch.nn.Module, gen: torch.Generator) -> tuple[float, torch.Tensor]:
        """``(loss, g)``: the loss on the data of this step and the gradient (P,) the rule is fed.

        GD: the whole training set (chunked). Otherwise a minibatch of ``batch_size`` indices
        drawn with replacement from ``gen`` (a host generator: the same draws on every device);
        SAM (``rho > 0``) then takes the gradient at the ascent point θ + ρ g/‖g‖ of that batch.
        """
        if self.optimizer == "gd":
            return full_loss_and_grad(model, problem.loss_fn, problem.X, problem.Y)
        idx = torch.randint(len(problem.X), (self.batch_size,), generator=gen).to(problem.X.device)
        Xb, Yb = problem.X[idx], problem.Y[idx]
        loss, g = loss_and_grad(model, problem.loss_fn, Xb, Yb)
        if self.optimizer == "sam" and self.rho > 0:
            params = trainable(model)
            theta = flatten(p.detach() for p in params).clone()
            set_flat(params, theta + self.rho * g / g.norm().clamp_min(1e-12))
            _, g = loss_and_grad(model, problem.loss_fn, Xb, Yb)  # the ascent step itself is not projected
            set_flat(params, theta)
        return loss, g

    def step(self, g: torch.Tensor, project: Projection) -> torch.Tensor:
        def kept(v: torch.Tensor) -> torch.Tensor:
            self.acted_on = v
            return project(v)

        if self.project_on == "gradient" or self.optimizer in ("sgd", "gd", "sam"):
            return self._base_step(kept(g), lambda d: d)
        return self._base_step(g, kept)

    def _base_step(self, g: torch.Tensor, project: Projection) -> torch.Tensor:
        if self.optimizer in ("sgd", "gd", "sam"):
            return project(self.lr * g)
        if self.optimizer == "momentum":
            buf = self.state.get("buf")
            buf = g.clone() if buf is None else self.momentum * buf + g
            self.state["buf"] = buf
            return project(self.lr * buf)
        # adam
        t = int(self.state.get("t", torch.tensor(0))) + 1
        m = self.state.get("m", torch.zeros_like(g))
        v = self.state.get("v", torch.zeros_like(g))
        m = self.beta1 * m + (1 - self.beta1) * g
        v = self.beta2 * v + (1 - self.beta2) * g * g
        self.state.update(m=m, v=v, t=torch.tensor(t))
        m_hat = m / (1 - self.beta1 ** t)
        v_hat = v / (1 - self.beta2 ** t)
        return project(self.lr * m_hat / (v_hat.sqrt() + self.eps))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: t.clone() for name, t in self.state.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.state = {name: t.clone() for name, t in state.items()}
