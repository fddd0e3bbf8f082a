"""Models of the paper's experiments, built by name through ``build_model``."""
from __future__ import annotations

import torch
from torch import nn

from .._validation import check_choice
from .mlp import PaperMLP

MODELS = {"mlp": PaperMLP}


def build_model(name: str, *, input_shape, num_classes: int, seed: int = 0, dtype=torch.float32, **kwargs) -> nn.Module:
    """A freshly initialised model; the same ``seed`` gives the same weights."""
    cls = MODELS[check_choice("model", name, MODELS)]
    torch.manual_seed(seed)
    return cls(input_shape=input_shape, num_classes=num_classes, **kwargs).to(dtype)


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["PaperMLP", "build_model", "num_parameters", "MODELS"]
