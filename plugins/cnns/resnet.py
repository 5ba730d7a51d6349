"""ResNet-18/34/50 (post-activation) with the CIFAR stem and per-stage strides."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from harness import Params

from .backbone import Backbone, strides_field


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers with a residual connection (1×1 projection when shapes change)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu1, self.relu2 = nn.ReLU(), nn.ReLU()  # one module per use: activation swaps see both
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False),
                                          nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1×1 reduce → 3×3 (carries the stride, torchvision's "v1.5") → 1×1 expand ×4, residual."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.relu1, self.relu2, self.relu3 = nn.ReLU(), nn.ReLU(), nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != out_planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu3(out + self.shortcut(x))


RESNET_BLOCKS: dict[int, tuple[type[BasicBlock] | type[Bottleneck], list[int]]] = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
}


class ResNet(Backbone):
    """CIFAR-style ResNet: 3×3 stride-1 stem, no max-pool, per-stage strides, global pooling.

    Default PyTorch initialization, as in the common CIFAR reference (kuangliu/pytorch-cifar).
    """

    feature_map_module = "stages"

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], blocks: list[int], in_channels: int,
                 num_classes: int, width: int = 64, strides: str = "1222") -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU())
        stages, in_planes = [], width
        for stage, (count, stride) in enumerate(zip(blocks, strides, strict=True)):
            planes = width * 2**stage
            layers = [block(in_planes, planes, int(stride))]
            in_planes = planes * block.expansion
            layers += [block(in_planes, planes, 1) for _ in range(count - 1)]
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(in_planes, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


class ResNet18Params(Params):
    width: int = Field(default=64, ge=1, description="Channels of the first stage (64 = standard).")
    strides: str = strides_field(4, "1222", "Stride of each of the 4 stages (1122: larger maps)")


class ResNetParams(ResNet18Params):
    depth: Literal[18, 34, 50] = Field(
        default=18, description="18 and 34 use BasicBlocks, 50 uses Bottlenecks (×4 expansion).")


def resnet18(params: ResNet18Params, in_channels: int, num_classes: int) -> ResNet:
    """ResNet-18 with the CIFAR stem (11.2M params at width 64); works from 1×1 inputs up."""
    return ResNet(BasicBlock, [2, 2, 2, 2], in_channels, num_classes, params.width, params.strides)


def resnet(params: ResNetParams, in_channels: int, num_classes: int) -> ResNet:
    """ResNet-18/34/50 with the CIFAR stem (11.2M / 21.3M / 23.5M params at width 64)."""
    block, blocks = RESNET_BLOCKS[params.depth]
    return ResNet(block, blocks, in_channels, num_classes, params.width, params.strides)
