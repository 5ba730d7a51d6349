"""The small CNN of the quickstart: two convs and two fully connected layers, any input."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from harness import DataInfo, Params, normalized


class SmallCNNParams(Params):
    channels: int = Field(default=32, ge=1, description="Channels of the first conv (doubled next).")
    hidden: int = Field(default=128, ge=1, description="Width of the hidden fully connected layer.")


def small_cnn(params: SmallCNNParams, info: DataInfo) -> nn.Module:
    """conv3×3 → ReLU → conv3×3 → ReLU → maxpool 2 → FC → ReLU → FC (about 150k params on digits)."""
    c, h, w = info.input_shape
    width = params.channels
    backbone = nn.Sequential(
        nn.Conv2d(c, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2) if min(h, w) >= 2 else nn.Identity(),
        nn.Flatten(),
        nn.LazyLinear(params.hidden), nn.ReLU(),
        nn.Linear(params.hidden, info.num_classes),
    )
    model = normalized(backbone, info)
    _materialize(model, info)
    return model


def _materialize(model: nn.Module, info: DataInfo) -> None:
    """Run one dummy forward so lazy layers get their shapes (and parameters) now."""
    with torch.no_grad():
        model.eval()(torch.zeros(1, *info.input_shape))
    model.train()
