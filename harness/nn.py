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


class Adapted(nn.Module):
    """A third-party model behind the input side and normalization it expects: the harness
    feeds [0,1] images of the dataset's size, the model sees what it was trained on."""

    def __init__(self, model: nn.Module, mean: Sequence[float] | None,
                 std: Sequence[float] | None, input_size: int | None) -> None:
        super().__init__()
        self.model, self.input_size = model, input_size
        self.normalize = Normalize(mean, std) if mean is not None and std is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_size is not None and x.shape[-1] != self.input_size:
            x = nn.functional.interpolate(x, size=(self.input_size, self.input_size),
                                          mode="bilinear", align_corners=False)
        return self.model(self.normalize(x) if self.normalize is not None else x)

