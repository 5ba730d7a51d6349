"""Small modules for architecture factories: normalization inside the model."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from harness.contracts import DataInfo


class Normalize(nn.Module):
    """(x − mean) / std per channel, so the model takes [0,1] inputs and attacks work there."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean)).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std)).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class NormalizedClassifier(nn.Module):
    """A backbone behind ``Normalize``; a plain Module (not Sequential) so toolkits call forward."""

    def __init__(self, backbone: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.normalize(x))


def normalized(backbone: nn.Module, info: DataInfo) -> NormalizedClassifier:
    """Wrap a backbone that expects normalized inputs with the dataset's mean and std."""
    return NormalizedClassifier(backbone, info.mean, info.std)
