"""Losses with the scaling the kit uses everywhere (documented once, here).

MSE on one-hot targets: ``mean over samples of Σ_c (out_c − y_c)²`` — a sum over classes, no ½
factor. This is the scaling of the public replication the kit follows; Cohen et al.'s code (whose
CNN and setting the paper builds on) uses ½ Σ_c (out_c − y_c)², and the paper's own scaling is
not confirmed by the sources we could read. The factor matters: with ½ the gradient and the
Hessian are halved, so the same η is SGD at half the step (2/η is compared with a λ1 half as
large). χ itself does not depend on the scale of the loss, but the trajectory does, hence χ
along it and whether and when the switch rule fires.

Cross-entropy takes the same one-hot targets so both losses are interchangeable in configs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._validation import check_choice


def mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over samples of the squared error summed over classes, no ½ (the replication's
    scaling, see the module docstring); targets one-hot (n, C)."""
    return ((outputs - targets) ** 2).sum(dim=-1).mean()


def cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of logits ``outputs`` (n, C) against one-hot (or soft) targets."""
    return -(targets * F.log_softmax(outputs, dim=-1)).sum(dim=-1).mean()


LOSSES = {"mse": mse, "cross_entropy": cross_entropy}


def get_loss(name: str):
    return LOSSES[check_choice("loss", name, LOSSES)]


def accuracy(outputs: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of samples whose largest output is the label."""
    return float((outputs.argmax(dim=-1) == labels).float().mean())
