"""BrightnessNet: a model small enough for tests, and able to be exactly right.

Each channel is averaged over the image and a linear layer maps the three means to one number.
With weights (1/3, 1/3, 1/3) and bias 0 it outputs the image's mean brightness in [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn


class BrightnessNet(nn.Module):
    def __init__(self, in_chans: int = 3) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(in_chans, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(x).flatten(1))


def brightness_net(*, in_chans: int = 3) -> BrightnessNet:
    """No ``num_classes``: a regression model has no classes, and the core must not pass one."""
    return BrightnessNet(in_chans=in_chans)
