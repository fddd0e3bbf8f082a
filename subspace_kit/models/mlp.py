"""The paper's MLP: 784-200-200-10 with tanh (199,210 parameters on MNIST)."""
from __future__ import annotations

import math

from torch import nn


class PaperMLP(nn.Sequential):
    """Fully connected tanh network; inputs are flattened, so any ``input_shape`` works."""

    def __init__(self, *, input_shape=(784,), num_classes: int = 10, width: int = 200, depth: int = 2,
                 activation: str = "tanh"):
        act = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}[activation]
        layers, fan_in = [nn.Flatten()], math.prod(input_shape)
        for _ in range(depth):
            layers += [nn.Linear(fan_in, width), act()]
            fan_in = width
        layers.append(nn.Linear(fan_in, num_classes))
        super().__init__(*layers)
