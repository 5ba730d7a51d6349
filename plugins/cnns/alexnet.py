"""rcm's CIFAR AlexNet of the larger-feature-map study (Xu et al., arXiv 2202.12435)."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from harness import Params

from .backbone import Backbone, strides_field


class AlexNet(Backbone):
    """rcm's CIFAR AlexNet (Xu et al.); at width w (64 = standard) and strides s0 s1 s2 s3:

    conv5×5(w, stride s0, pad 2) ReLU → maxpool2(stride s1) → conv5×5(3w, pad 2) ReLU →
    maxpool2(stride s2) → conv3×3(6w) ReLU → conv3×3(4w) ReLU → conv3×3(4w) ReLU →
    maxpool2(stride s3) → global avgpool → dropout FC(8w) ReLU → dropout FC(8w) ReLU → FC.
    A max-pool of stride 1 keeps its 2×2 window (the map shrinks by one pixel), as in rcm.
    Default init. 2.85M params at width 64; final map 2×2 at 32×32 with 2222, 7×7 with 1122.
    """

    feature_map_module = "features"

    def __init__(self, in_channels: int, num_classes: int, width: int = 64, strides: str = "2222",
                 dropout: float = 0.5) -> None:
        super().__init__()
        s = [int(d) for d in strides]
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 5, stride=s[0], padding=2), nn.ReLU(),
            nn.MaxPool2d(2, stride=s[1]),
            nn.Conv2d(width, 3 * width, 5, padding=2), nn.ReLU(),
            nn.MaxPool2d(2, stride=s[2]),
            nn.Conv2d(3 * width, 6 * width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(6 * width, 4 * width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(4 * width, 4 * width, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2, stride=s[3]),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(4 * width, 8 * width), nn.ReLU(),
            nn.Dropout(dropout), nn.Linear(8 * width, 8 * width), nn.ReLU(),
            nn.Linear(8 * width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


class AlexNetParams(Params):
    width: int = Field(default=64, ge=1, description="Channels of the first conv (64 = standard).")
    strides: str = strides_field(4, "2222", "Stride of conv1 and of the 3 max-pools (1122: larger "
                                             "maps)")
    dropout: float = Field(default=0.5, ge=0, lt=1, description="Dropout before the two hidden FCs.")


def alexnet(params: AlexNetParams, in_channels: int, num_classes: int) -> AlexNet:
    """CIFAR AlexNet of the larger-feature-map study; 2222 needs inputs of at least 15×15."""
    return AlexNet(in_channels, num_classes, params.width, params.strides, params.dropout)
