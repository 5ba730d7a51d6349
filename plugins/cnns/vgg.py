"""VGG-11/13/16/19 (BN), CIFAR style: global pooling, a stride digit per max-pool."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from harness import Params

from .backbone import Backbone, init_like_torchvision, strides_field

VGG_LAYOUTS: dict[int, list[int | str]] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"],
}


class VGG(Backbone):
    """VGG with 3×3 convs (biased, then BN, ReLU); a stride digit of 1 removes that max-pool.

    Keys and init follow rcm/torchvision (``features``, ``classifier``). Head ``linear`` is the
    common CIFAR one (512 → classes); ``mlp`` is rcm's 512 → 256 → 256 → classes with dropout.
    Global average pooling makes the classifier independent of the input size.
    """

    feature_map_module = "features"

    def __init__(self, layout: list[int | str], in_channels: int, num_classes: int, width: int = 64,
                 strides: str = "22222", batch_norm: bool = True,
                 head: Literal["linear", "mlp"] = "linear") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        pools = iter(strides)
        channels = in_channels
        for item in layout:
            if item == "M":
                if int(next(pools)) > 1:
                    layers.append(nn.MaxPool2d(2, 2))
                continue
            out = max(1, int(item) * width // 64)
            layers.append(nn.Conv2d(channels, out, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU())
            channels = out
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        if head == "linear":
            self.classifier = nn.Sequential(nn.Linear(channels, num_classes))
        else:
            hidden = 4 * width
            self.classifier = nn.Sequential(
                nn.Linear(channels, hidden), nn.ReLU(), nn.Dropout(),
                nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(),
                nn.Linear(hidden, num_classes))
        init_like_torchvision(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


class VGGParams(Params):
    depth: Literal[11, 13, 16, 19] = Field(default=16, description="VGG configuration A/B/D/E.")
    width: int = Field(default=64, ge=1, description="Channels of the first conv (64 = standard; "
                                                     "the others scale with it).")
    strides: str = strides_field(5, "22222", "Stride of each of the 5 max-pools (1 removes it)")
    batch_norm: bool = Field(default=True, description="BatchNorm after every conv (VGG-bn).")
    head: Literal["linear", "mlp"] = Field(
        default="linear", description="linear: 512→classes (CIFAR VGG, 14.7M for VGG-16-BN); "
                                      "mlp: rcm's 512→256→256→classes with dropout (14.9M).")


def vgg(params: VGGParams, in_channels: int, num_classes: int) -> VGG:
    """VGG-11/13/16/19 (BN), CIFAR style: global pooling, 1×1 final map at 32×32 with 22222."""
    return VGG(VGG_LAYOUTS[params.depth], in_channels, num_classes, params.width, params.strides,
               params.batch_norm, params.head)
