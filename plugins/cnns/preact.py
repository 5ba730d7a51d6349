"""PreAct-ResNet-18/34 (He et al. 2016) with the CIFAR stem, in rcm's layout and keys."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from .backbone import Backbone
from .resnet import RESNET_BLOCKS, ResNet18Params


class PreActBlock(nn.Module):
    """BN-ReLU-conv3×3 twice; the projection shortcut takes the pre-activated input (He et al. 2016)."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(self.relu2(self.bn2(out)))
        return out + shortcut


class PreActResNet(Backbone):
    """PreAct-ResNet with the CIFAR stem and a final BN-ReLU before pooling (rcm's layout and keys)."""

    feature_map_module = "relu"

    def __init__(self, blocks: list[int], in_channels: int, num_classes: int, width: int = 64,
                 strides: str = "1222") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        in_planes = width
        for stage, (count, stride) in enumerate(zip(blocks, strides, strict=True)):
            planes = width * 2**stage
            layers = [PreActBlock(in_planes if i == 0 else planes, planes, int(stride) if i == 0 else 1)
                      for i in range(count)]
            setattr(self, f"layer{stage + 1}", nn.Sequential(*layers))
            in_planes = planes
        self.bn = nn.BatchNorm2d(in_planes)
        self.relu = nn.ReLU()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        self.num_stages = len(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        for stage in range(self.num_stages):
            out = getattr(self, f"layer{stage + 1}")(out)
        out = self.relu(self.bn(out))
        return self.fc(self.avg_pool(out).flatten(1))


class PreActResNetParams(ResNet18Params):
    depth: Literal[18, 34] = Field(default=18, description="18 = blocks [2,2,2,2], 34 = [3,4,6,3].")


def preact_resnet(params: PreActResNetParams, in_channels: int, num_classes: int) -> PreActResNet:
    """PreAct-ResNet-18/34 with the CIFAR stem (11.2M / 21.3M params at width 64)."""
    return PreActResNet(RESNET_BLOCKS[params.depth][1], in_channels, num_classes, params.width,
                        params.strides)
