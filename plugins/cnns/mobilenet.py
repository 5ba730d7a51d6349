"""MobileNetV2 as torchvision builds it, with CIFAR strides."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from harness import Params

from .backbone import Backbone, init_like_torchvision, strides_field


def _make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's channel rounding: nearest multiple of 8, never more than 10% below."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _conv_bn_relu6(in_planes: int, out_planes: int, kernel: int = 3, stride: int = 1,
                   groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_planes), nn.ReLU6())


class InvertedResidual(nn.Module):
    """1×1 expand (t×) → depthwise 3×3 (stride) → 1×1 linear projection; residual if shapes match."""

    def __init__(self, in_planes: int, out_planes: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = in_planes * expand
        self.use_residual = stride == 1 and in_planes == out_planes
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_conv_bn_relu6(in_planes, hidden, kernel=1))
        layers += [_conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, out_planes, 1, bias=False), nn.BatchNorm2d(out_planes)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


#: (expansion t, channels c, blocks n) per stage; the strides come from the strides string.
MOBILENET_V2_STAGES = [(1, 16, 1), (6, 24, 2), (6, 32, 3), (6, 64, 4), (6, 96, 3), (6, 160, 3),
                       (6, 320, 1)]


class MobileNetV2(Backbone):
    """torchvision's MobileNetV2 (keys, ReLU6, init) with CIFAR strides: 1 in the stem and the
    first two stages (ImageNet strides are 21222121), so 32×32 inputs end in a 4×4 map."""

    feature_map_module = "features"

    def __init__(self, in_channels: int, num_classes: int, width_mult: float = 1.0,
                 strides: str = "11122121", dropout: float = 0.2) -> None:
        super().__init__()
        planes = _make_divisible(32 * width_mult)
        last = _make_divisible(1280 * max(1.0, width_mult))
        layers: list[nn.Module] = [_conv_bn_relu6(in_channels, planes, stride=int(strides[0]))]
        for (expand, channels, count), stride in zip(MOBILENET_V2_STAGES, strides[1:], strict=True):
            out = _make_divisible(channels * width_mult)
            for i in range(count):
                layers.append(InvertedResidual(planes, out, int(stride) if i == 0 else 1, expand))
                planes = out
        layers.append(_conv_bn_relu6(planes, last, kernel=1))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))
        init_like_torchvision(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


class MobileNetV2Params(Params):
    width_mult: float = Field(default=1.0, gt=0, description="Channel multiplier (rounded to 8s).")
    strides: str = strides_field(8, "11122121", "Stride of the stem and of the 7 stages")
    dropout: float = Field(default=0.2, ge=0, lt=1, description="Dropout before the classifier.")


def mobilenet_v2(params: MobileNetV2Params, in_channels: int, num_classes: int) -> MobileNetV2:
    """MobileNetV2, CIFAR variant (stride 1 in the stem and first stages); 2.24M params."""
    return MobileNetV2(in_channels, num_classes, params.width_mult, params.strides, params.dropout)
