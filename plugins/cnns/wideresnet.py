"""The WideResNet of Huang et al. 2021 (RobustWideResNet): per-stage depth, width and activation."""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn

from harness import Params

from .backbone import Backbone, strides_field

ActivationName = Literal["relu", "silu", "swish", "gelu", "softplus", "mish", "prelu", "leakyrelu"]

#: Per-stage activation choices of RobustWideResNet (swish = x·sigmoid(x), i.e. SiLU).
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "silu": nn.SiLU, "swish": nn.SiLU, "gelu": nn.GELU, "softplus": nn.Softplus,
    "mish": nn.Mish, "prelu": nn.PReLU, "leakyrelu": nn.LeakyReLU,
}


class WideBasicBlock(nn.Module):
    """RobustWRN's pre-activation BasicBlock, attribute names and all (its checkpoints load).

    When the channel count changes the block pre-activates its input once and feeds it to both
    the conv and the 1×1 shortcut; otherwise the shortcut is the raw input (or a 1×1 conv of it
    when strided, as in the reference).
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int, drop_rate: float,
                 activation: str) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = ACTIVATIONS[activation]()
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = ACTIVATIONS[activation]()
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, 1, 1, bias=False)
        self.drop_rate = drop_rate
        self.equal_in_out = in_planes == out_planes
        self.convShortcut: nn.Module | None = None
        if not self.equal_in_out or stride != 1:
            self.convShortcut = nn.Conv2d(in_planes, out_planes, 1, stride, 0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.equal_in_out:
            out = self.relu1(self.bn1(x))
        else:
            x = out = self.relu1(self.bn1(x))
        out = self.relu2(self.bn2(self.conv1(out)))
        if self.drop_rate > 0:
            out = nn.functional.dropout(out, p=self.drop_rate, training=self.training)
        out = self.conv2(out)
        return (x if self.convShortcut is None else self.convShortcut(x)) + out


class NetworkBlock(nn.Module):
    """One stage: ``layer`` is a Sequential of blocks (RobustWRN's nesting, for its keys)."""

    def __init__(self, count: int, in_planes: int, out_planes: int, stride: int, drop_rate: float,
                 activation: str) -> None:
        super().__init__()
        self.layer = nn.Sequential(*[
            WideBasicBlock(in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1,
                           drop_rate, activation) for i in range(count)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class WideResNet(Backbone):
    """Huang et al. 2021's RobustWideResNet (HanxunH/RobustWRN, models/RobustWideResNet.py).

    3×3 stem conv (16 channels, stride 1), 3 stages of pre-activation BasicBlocks with strides
    [1,2,2] and channels [16·W1, 32·W2, 64·W3], D1/D2/D3 blocks each and a per-stage activation,
    then BN-ReLU, global pooling, FC. Init as the reference: conv weights N(0, √(2/(k·k·out))),
    BN weight 1 / bias 0, FC bias 0 (FC weight keeps PyTorch's default).
    """

    feature_map_module = "relu"

    def __init__(self, depths: list[int], widths: list[float], activations: list[str],
                 in_channels: int, num_classes: int, strides: str = "122", drop_rate: float = 0.0,
                 final_activation: str = "relu") -> None:
        super().__init__()
        channels = [16] + [max(1, round(base * w)) for base, w in zip((16, 32, 64), widths, strict=True)]
        self.channel_configs = channels
        self.stem_conv = nn.Conv2d(in_channels, channels[0], 3, 1, 1, bias=False)
        self.blocks = nn.ModuleList([
            NetworkBlock(depths[i], channels[i], channels[i + 1], int(strides[i]), drop_rate,
                         activations[i]) for i in range(3)])
        self.bn1 = nn.BatchNorm2d(channels[-1])
        self.relu = ACTIVATIONS[final_activation]()
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels[-1], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0, math.sqrt(2.0 / fan))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stem_conv(x)
        for block in self.blocks:
            out = block(out)
        out = self.relu(self.bn1(out))
        return self.fc(self.global_pooling(out).flatten(1))


class WideResNetParams(Params):
    depths: list[Annotated[int, Field(ge=1)]] = Field(
        default=[5, 5, 5], min_length=3, max_length=3,
        description="Blocks per stage [D1,D2,D3]; depth = 6·D + 4 when equal (d5-5-5 = WRN-34).")
    widths: list[Annotated[float, Field(gt=0)]] = Field(
        default=[10, 10, 10], min_length=3, max_length=3,
        description="Widen factor per stage [W1,W2,W3]: channels [16, 16·W1, 32·W2, 64·W3].")
    activations: list[ActivationName] = Field(
        default=["relu", "relu", "relu"], min_length=3, max_length=3,
        description="Activation inside the blocks of each stage.")
    final_activation: ActivationName = Field(
        default="relu", description="Activation after the final BN (RobustWRN: always ReLU).")
    strides: str = strides_field(3, "122", "Stride of each of the 3 stages")
    drop_rate: float = Field(default=0.0, ge=0, lt=1, description="Dropout between a block's convs.")


def wide_resnet(params: WideResNetParams, in_channels: int, num_classes: int) -> WideResNet:
    """WideResNet with per-stage depth/width/activation (WRN-34-10: 46.2M, WRN-34-R: 68.1M)."""
    return WideResNet(params.depths, params.widths, list(params.activations), in_channels,
                      num_classes, params.strides, params.drop_rate, params.final_activation)
