"""Update rules on flat parameter vectors, with a projection applied where the config says.

Every rule maps the gradient it is fed, ``g`` (P,), to a step ``Δθ`` with θ ← θ − Δθ:

- ``sgd`` / ``gd`` / ``sam``: Δθ = η g  (for SAM, ``g`` is the gradient at the ascent point;
  the runner computes it, the ascent itself is not projected).
- ``momentum`` (heavy ball, PyTorch convention): b ← β b + g,  Δθ = η b.
- ``adam``: m ← β1 m + (1−β1) g,  v ← β2 v + (1−β2) g²,  Δθ = η m̂ / (√v̂ + ε).

The projection ``project`` (identity, dominant, bulk or interpolated; see ``projection.py``)
acts on the final update (``project_on="update"``, optimizer state unprojected) or on the
gradient fed to the optimizer (``project_on="gradient"``). For SGD, GD and SAM the two agree.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..projection import bulk, dominant, interpolate

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

    ``step(g, project)`` returns Δθ (P,) and advances the state. ``state_dict`` /
    ``load_state_dict`` hold plain tensors (saved without pickle by the run store).
    """

    def __init__(self, optimizer: str, *, lr: float, momentum: float = 0.9, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8, project_on: str = "update"):
        self.optimizer, self.lr, self.momentum = optimizer, lr, momentum
        self.beta1, self.beta2, self.eps, self.project_on = beta1, beta2, eps, project_on
        self.state: dict[str, torch.Tensor] = {}

    def step(self, g: torch.Tensor, project: Projection) -> torch.Tensor:
        if self.project_on == "gradient" or self.optimizer in ("sgd", "gd", "sam"):
            return self._base_step(project(g), lambda d: d)
        return self._base_step(g, project)

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
