"""The paper's CNN: Cohen et al.'s ``cnn-relu`` (Edge of Stability, ICLR 2021).

Variant chosen (their ``convnet`` with widths [32, 32], ``relu``, ``max`` pooling, bias):
``[Conv 3x3, padding 1 -> ReLU -> MaxPool 2x2] x 2 -> Flatten -> Linear(32*8*8, 10)``,
PyTorch's default initialisation. 30,634 parameters on CIFAR-10. The paper cites this family;
that it used exactly this variant is our reading [repl/guess].
"""
from __future__ import annotations

import math

from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU}
POOLING = {"max": nn.MaxPool2d, "average": nn.AvgPool2d}


def image_shape(input_shape) -> tuple[int, int, int]:
    """``(C, H, W)``; a flat ``(D,)`` with D a perfect square is read as one ``sqrt(D)``-wide channel."""
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) == 3:
        return input_shape
    if len(input_shape) == 1 and math.isqrt(input_shape[0]) ** 2 == input_shape[0]:
        side = math.isqrt(input_shape[0])
        return (1, side, side)
    raise ValueError(f"input_shape must be (C, H, W) or (D,) with D a perfect square; got {input_shape}")


class PaperCNN(nn.Sequential):
    """Convolutional net; inputs ``(n, C, H, W)``, or ``(n, H*W)`` for square one-channel images."""

    def __init__(self, *, input_shape=(3, 32, 32), num_classes: int = 10, widths=(32, 32),
                 activation: str = "relu", pooling: str = "max"):
        if activation not in ACTIVATIONS or pooling not in POOLING:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)} and pooling one of {sorted(POOLING)}; "
                             f"got {activation!r}, {pooling!r}")
        channels, height, width = image_shape(input_shape)
        layers = [] if len(tuple(input_shape)) == 3 else [nn.Unflatten(1, (channels, height, width))]
        for out_channels in widths:
            layers += [nn.Conv2d(channels, out_channels, kernel_size=3, padding=1), ACTIVATIONS[activation](),
                       POOLING[pooling](2)]
            channels, height, width = out_channels, height // 2, width // 2
        layers += [nn.Flatten(), nn.Linear(channels * height * width, num_classes)]
        super().__init__(*layers)
