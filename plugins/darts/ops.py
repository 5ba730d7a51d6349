"""The candidate ops of a DARTS cell's edges, and how a Lipschitz estimate treats each.

Every op maps C channels to C; every stride-2 op rounds up (⌈H/2⌉), so any input size works,
8×8 digits included (8 → 4 → 2).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

EdgeKind = Literal["conv", "pool", "skip", "zero"]

#: How a Lipschitz estimate treats each op (skip_connect at stride 2 is a FactorizedReduce: "conv").
OP_KINDS: dict[str, EdgeKind] = {
    "none": "zero", "max_pool_3x3": "pool", "avg_pool_3x3": "pool", "skip_connect": "skip",
    "sep_conv_3x3": "conv", "sep_conv_5x5": "conv", "dil_conv_3x3": "conv", "dil_conv_5x5": "conv",
    "sep_conv_7x7": "conv", "conv_7x1_1x7": "conv",
}


class Zero(nn.Module):
    """The ``none`` op: zeros of the (strided) input's shape, so the edge contributes nothing."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, ::self.stride, ::self.stride]
        return x * 0.0


class ReLUConvBN(nn.Sequential):
    """ReLU → conv (no bias) → BN: the cell-input preprocessing."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(nn.ReLU(), nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
                         nn.BatchNorm2d(c_out))


class FactorizedReduce(nn.Module):
    """ReLU → two stride-2 1×1 convs, the second on the input shifted by one pixel → concat → BN.

    DARTS shifts with ``x[:, :, 1:, 1:]``, which breaks on odd sizes (the two halves differ by a
    pixel); padding the shifted input back to full size gives the same values on even sizes and
    ⌈H/2⌉ on odd ones, like every other stride-2 op here.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class SepConv(nn.Sequential):
    """Separable conv applied twice: (ReLU → depthwise k×k → pointwise 1×1 → BN) × 2; stride first."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        padding = kernel // 2
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(c_in, c_in, kernel, stride, padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_in, 1, bias=False),
            nn.BatchNorm2d(c_in),
            nn.ReLU(),
            nn.Conv2d(c_in, c_in, kernel, 1, padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )


class DilConv(nn.Sequential):
    """ReLU → depthwise k×k with dilation 2 → pointwise 1×1 → BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, dilation: int = 2) -> None:
        padding = dilation * (kernel - 1) // 2
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Conv7x1x1x7(nn.Sequential):
    """ReLU → 1×7 conv → 7×1 conv → BN (AmoebaNet's factorized 7×7)."""

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(channels, channels, (1, 7), stride=(1, stride), padding=(0, 3), bias=False),
            nn.Conv2d(channels, channels, (7, 1), stride=(stride, 1), padding=(3, 0), bias=False),
            nn.BatchNorm2d(channels),
        )


def make_op(name: str, channels: int, stride: int) -> nn.Module:
    """The module of one edge; every op maps C channels to C and H×W to ⌈H/s⌉×⌈W/s⌉."""
    if name == "none":
        return Zero(stride)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(channels, channels)
    if name.startswith("sep_conv_"):
        return SepConv(channels, channels, int(name[-1]), stride)
    if name.startswith("dil_conv_"):
        return DilConv(channels, channels, int(name[-1]), stride)
    if name == "conv_7x1_1x7":
        return Conv7x1x1x7(channels, stride)
    raise ValueError(f"unknown DARTS op {name!r}; known: {', '.join(OP_KINDS)}")


def drop_path(x: torch.Tensor, prob: float) -> torch.Tensor:
    """Zero whole examples of an edge's output with probability ``prob``, rescaling the rest."""
    keep = 1.0 - prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x * mask / keep  # not in place: the op's output may be needed for its backward
