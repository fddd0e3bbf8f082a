"""Models of the paper's experiments, built by name through ``build_model``.

- ``"mlp"``: 784-200-200-10 tanh (MNIST, Fashion-MNIST, any input flattened);
- ``"cnn"``: Cohen et al.'s ``cnn-relu`` (CIFAR-10; also square one-channel images);
- ``"transformer"``: 2-layer encoder over token ids (SST-2); needs ``vocab_size``.
"""
from __future__ import annotations

import torch
from torch import nn

from .._validation import check_choice
from .cnn import PaperCNN
from .mlp import PaperMLP
from .transformer import TextTransformer

MODELS = {"mlp": PaperMLP, "cnn": PaperCNN, "transformer": TextTransformer}


def build_model(name: str, *, input_shape=None, num_classes: int | None = None, seed: int = 0,
                dtype=torch.float32, data=None, **kwargs) -> nn.Module:
    """A freshly initialised model; the same ``seed`` gives the same weights.

    ``data`` (a ``Dataset``), when given, supplies ``input_shape``, ``num_classes`` and what the
    model reads from ``data.meta`` (the Transformer's ``vocab_size`` and ``pad_id``); explicit
    arguments win. Parameters are created on the CPU: move the model with ``.to(device)``.
    """
    cls = MODELS[check_choice("model", name, MODELS)]
    if data is not None:
        input_shape = data.input_shape if input_shape is None else input_shape
        num_classes = data.num_classes if num_classes is None else num_classes
        for key in getattr(cls, "data_keys", ()):
            if key in data.meta:
                kwargs.setdefault(key, data.meta[key])
    if input_shape is None or num_classes is None:
        raise ValueError("build_model needs input_shape and num_classes, or data= to read them from")
    torch.manual_seed(seed)
    return cls(input_shape=input_shape, num_classes=num_classes, **kwargs).to(dtype)


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["PaperMLP", "PaperCNN", "TextTransformer", "build_model", "num_parameters", "MODELS"]
