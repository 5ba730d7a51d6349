"""DenseNet-BC, CIFAR variant (DenseNet-121 by default)."""

from __future__ import annotations

import math
from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from harness import Params

from .backbone import Backbone, strides_field


class DenseLayer(nn.Module):
    """BN-ReLU-conv1×1(4k)-BN-ReLU-conv3×3(k), concatenated in front of its input."""

    def __init__(self, in_planes: int, growth: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_planes, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.relu1(self.bn1(x)))
        out = self.conv2(self.relu2(self.bn2(out)))
        return torch.cat([out, x], 1)


class Transition(nn.Module):
    """BN-ReLU-conv1×1 (compression), then 2×2 average pooling unless its stride digit is 1."""

    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_planes)
        self.relu = nn.ReLU()
        self.conv = nn.Conv2d(in_planes, out_planes, 1, bias=False)
        self.pool: nn.Module = nn.AvgPool2d(2) if stride > 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(self.relu(self.bn(x))))


class DenseNet(Backbone):
    """DenseNet-BC, CIFAR variant (kuangliu/pytorch-cifar): 3×3 stem of 2k channels, no pooling
    in the stem, dense blocks joined by compressing transitions, final BN-ReLU, global pooling."""

    feature_map_module = "relu"

    def __init__(self, blocks: list[int], in_channels: int, num_classes: int, growth: int = 32,
                 reduction: float = 0.5, strides: str = "222") -> None:
        super().__init__()
        planes = 2 * growth
        self.conv1 = nn.Conv2d(in_channels, planes, 3, padding=1, bias=False)
        for i, count in enumerate(blocks):
            layers = [DenseLayer(planes + j * growth, growth) for j in range(count)]
            setattr(self, f"dense{i + 1}", nn.Sequential(*layers))
            planes += count * growth
            if i < len(blocks) - 1:
                out_planes = math.floor(planes * reduction)
                setattr(self, f"trans{i + 1}", Transition(planes, out_planes, int(strides[i])))
                planes = out_planes
        self.bn = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(planes, num_classes)
        self.num_blocks = len(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        for i in range(self.num_blocks):
            out = getattr(self, f"dense{i + 1}")(out)
            if i < self.num_blocks - 1:
                out = getattr(self, f"trans{i + 1}")(out)
        out = self.relu(self.bn(out))
        return self.linear(self.avgpool(out).flatten(1))


class DenseNetParams(Params):
    blocks: list[Annotated[int, Field(ge=1)]] = Field(
        default=[6, 12, 24, 16], min_length=4, max_length=4,
        description="Layers in each of the 4 dense blocks ([6,12,24,16] = DenseNet-121).")
    growth: int = Field(default=32, ge=1, description="Growth rate k (channels each layer adds).")
    reduction: float = Field(default=0.5, gt=0, le=1, description="Transition compression.")
    strides: str = strides_field(3, "222", "Pooling stride of each of the 3 transitions")


def densenet(params: DenseNetParams, in_channels: int, num_classes: int) -> DenseNet:
    """DenseNet-BC with the CIFAR stem; DenseNet-121 (k=32) has 7.0M params."""
    return DenseNet(params.blocks, in_channels, num_classes, params.growth, params.reduction,
                    params.strides)
