"""CNN architectures adapted to the dataset's input size and channels: a small CNN, ResNet-18."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from harness import DataInfo, hookimpl, normalized


class SmallCNNParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

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


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers with a residual connection (1×1 projection when shapes change)."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False),
                                          nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR-style ResNet: 3×3 stride-1 stem, no max-pool, per-stage strides, global pooling."""

    def __init__(self, blocks: list[int], in_channels: int, num_classes: int, width: int = 64,
                 strides: str = "1222") -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU())
        stages, in_planes = [], width
        for stage, (count, stride) in enumerate(zip(blocks, strides, strict=True)):
            planes = width * 2**stage
            layers = [BasicBlock(in_planes, planes, int(stride))]
            layers += [BasicBlock(planes, planes, 1) for _ in range(count - 1)]
            stages.append(nn.Sequential(*layers))
            in_planes = planes
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(in_planes, num_classes))

    def forward(self, x):
        return self.head(self.stages(self.stem(x)))


class ResNet18Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    width: int = Field(default=64, ge=1, description="Channels of the first stage (64 = standard).")
    strides: str = Field(default="1222", pattern=r"^[12]{4}$",
                         description="Stride of each of the 4 stages, e.g. 1122.")


def resnet18(params: ResNet18Params, info: DataInfo) -> nn.Module:
    """ResNet-18 with the CIFAR stem (11.2M params at width 64); works from 8×8 inputs up."""
    backbone = ResNet([2, 2, 2, 2], info.input_shape[0], info.num_classes, params.width,
                      params.strides)
    return normalized(backbone, info)


def _materialize(model: nn.Module, info: DataInfo) -> None:
    """Run one dummy forward so lazy layers get their shapes (and parameters) now."""
    import torch

    with torch.no_grad():
        model.eval()(torch.zeros(1, *info.input_shape))
    model.train()


@hookimpl
def harness_register_architectures(registry):
    registry.add("small-cnn", small_cnn, params=SmallCNNParams,
                 description="two 3×3 convs, max-pool, two FC layers")
    registry.add("resnet18", resnet18, params=ResNet18Params,
                 description="ResNet-18, CIFAR stem (3×3 stride 1, no max-pool), any input size")
