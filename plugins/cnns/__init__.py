"""CIFAR-style CNN zoo adapted to the dataset's input size and channels.

A small CNN, ResNet-18/34/50, PreAct-ResNet-18/34, VGG-11/13/16/19 (BN), AlexNet, DenseNet-121,
MobileNetV2 and the per-stage WideResNet of Huang et al. 2021 (RobustWideResNet). Every network
but the small CNN uses a CIFAR stem (no early downsampling) and takes a ``strides`` string, one
digit per downsampling point, so the larger-feature-map study (Xu et al., arXiv 2202.12435) can
move them.

The final feature map before global average pooling is exposed on every zoo backbone:

* ``backbone.feature_map_module`` (str) names the submodule whose *output* is that map; a
  metrics plugin finds it on a built model with
  ``next(m for m in model.modules() if isinstance(getattr(m, "feature_map_module", None), str))``
  and reads its size with a forward hook on ``m.get_submodule(m.feature_map_module)``, which
  also accounts for variants (e.g. input upsampling) in front of the backbone;
* ``backbone.feature_map_shape((C, H, W)) -> (C', H', W')`` computes it for a given backbone
  input size on the meta device: no memory and no arithmetic, even for WRN-34-20 (0.1–0.5 s,
  plus about 3 s the first time a process loads torch's meta kernels).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Annotated, Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from harness import DataInfo, hookimpl, normalized
from harness.toolkits import kept_modes

# --- shared pieces -------------------------------------------------------------------------------


class Backbone(nn.Module):
    """A classifier on normalized inputs whose final pre-pooling feature map can be located."""

    #: Name of the submodule whose output is the last feature map before global pooling.
    feature_map_module: str = ""

    def feature_map_shape(self, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
        """(C, H, W) of the final feature map for backbone inputs of ``input_shape``.

        Runs the network on the meta device (shapes only, no memory even for WRN-34-20) and
        raises the same RuntimeError a real forward would when the input is too small.
        """
        from torch.func import functional_call

        state = {name: torch.empty_like(t, device="meta")
                 for name, t in itertools.chain(self.named_parameters(), self.named_buffers())}
        seen: list[tuple[int, int, int]] = []
        target = self.get_submodule(self.feature_map_module)
        handle = target.register_forward_hook(lambda _m, _i, out: seen.append(tuple(out.shape[1:])))
        try:
            with kept_modes(self), torch.no_grad():
                self.eval()  # eval-mode BatchNorm is twice as fast on meta and takes a batch of one
                functional_call(self, state, (torch.empty(1, *input_shape, device="meta"),))
        finally:
            handle.remove()
        return seen[-1]


Builder = Callable[[Any, int, int], Backbone]


def _factory(build: Builder) -> Callable[[Any, DataInfo], nn.Module]:
    """``factory(params, info)``: the backbone for the dataset's channels, behind Normalize."""

    def factory(params: Any, info: DataInfo) -> nn.Module:
        return normalized(build(params, info.input_shape[0], info.num_classes), info)

    factory.__name__ = factory.__qualname__ = build.__name__.lstrip("_")
    factory.__doc__ = build.__doc__
    return factory


def _forward_error(backbone: nn.Module, shape: tuple[int, ...]) -> str | None:
    """Why one forward of a (thin) backbone on inputs of ``shape`` fails, or None if it works."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: with busy cores, OpenMP waits cost 10 ms per layer
    try:
        with torch.no_grad():
            backbone.eval()(torch.zeros(1, *shape))
    except (RuntimeError, ValueError) as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    finally:
        torch.set_num_threads(threads)
    return None


def _fits(backbone: nn.Module, shape: tuple[int, ...]) -> bool:
    return _forward_error(backbone, shape) is None


def _input_check(build: Builder, thin: dict[str, Any]) -> Callable[[Any, tuple[int, ...]], str | None]:
    """``check_input`` for a builder: is every feature map non-empty for this input size?

    Asked by ``harness validate`` so that, say, VGG-16 with five poolings on 8×8 digits is
    rejected with the smallest size it takes instead of failing inside a forward pass. Spatial
    sizes do not depend on width, so it runs a real forward of a ``thin`` copy (the params
    updated with ``thin``): milliseconds on CPU, where the meta device costs seconds of imports.
    """

    def check(params: BaseModel, shape: tuple[int, ...]) -> str | None:
        if len(shape) != 3:
            return f"needs (C, H, W) images, not inputs of shape {tuple(shape)}"
        with torch.random.fork_rng(devices=[]):  # validating must not move the global RNG
            backbone = build(params.model_copy(update=thin), shape[0], 2)
        error = _forward_error(backbone, shape)
        if error is None:
            return None
        # The shorter side is what fails: double, then bisect (low fails, high fits).
        low = max(1, min(shape[1:]))
        high = 2 * low
        while high <= 1024 and not _fits(backbone, (shape[0], high, high)):
            low, high = high, 2 * high
        if high > 1024:
            return f"cannot take inputs of {shape[1]}×{shape[2]}: {error}"
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if _fits(backbone, (shape[0], middle, middle)) else (middle, high)
        return (f"inputs of {shape[1]}×{shape[2]} are too small for these strides (a feature map "
                f"shrinks to nothing); it needs at least {high}×{high}: use a strides string with "
                "more 1s or a larger input")

    return check


def _strides_field(stages: int, default: str, what: str) -> Any:
    return Field(default=default, pattern=rf"^[12]{{{stages}}}$",
                 description=f"{what}: one digit (1 or 2) each, e.g. {default!r}.")


ActivationName = Literal["relu", "silu", "swish", "gelu", "softplus", "mish", "prelu", "leakyrelu"]

#: Per-stage activation choices of RobustWideResNet (swish = x·sigmoid(x), i.e. SiLU).
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "silu": nn.SiLU, "swish": nn.SiLU, "gelu": nn.GELU, "softplus": nn.Softplus,
    "mish": nn.Mish, "prelu": nn.PReLU, "leakyrelu": nn.LeakyReLU,
}


def _init_like_torchvision(model: nn.Module) -> None:
    """Kaiming-normal (fan_out) convs, unit BN, N(0, 0.01) linear layers: torchvision's VGG/MobileNet."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


# --- small CNN -----------------------------------------------------------------------------------


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


def _materialize(model: nn.Module, info: DataInfo) -> None:
    """Run one dummy forward so lazy layers get their shapes (and parameters) now."""
    with torch.no_grad():
        model.eval()(torch.zeros(1, *info.input_shape))
    model.train()


# --- ResNet (post-activation), CIFAR stem ---------------------------------------------------------


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


class ResNet18Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    width: int = Field(default=64, ge=1, description="Channels of the first stage (64 = standard).")
    strides: str = _strides_field(4, "1222", "Stride of each of the 4 stages (1122: larger maps)")


class ResNetParams(ResNet18Params):
    depth: Literal[18, 34, 50] = Field(
        default=18, description="18 and 34 use BasicBlocks, 50 uses Bottlenecks (×4 expansion).")


def _resnet18(params: ResNet18Params, in_channels: int, num_classes: int) -> ResNet:
    """ResNet-18 with the CIFAR stem (11.2M params at width 64); works from 1×1 inputs up."""
    return ResNet(BasicBlock, [2, 2, 2, 2], in_channels, num_classes, params.width, params.strides)


def _resnet(params: ResNetParams, in_channels: int, num_classes: int) -> ResNet:
    """ResNet-18/34/50 with the CIFAR stem (11.2M / 21.3M / 23.5M params at width 64)."""
    block, blocks = RESNET_BLOCKS[params.depth]
    return ResNet(block, blocks, in_channels, num_classes, params.width, params.strides)


# --- PreAct-ResNet ---------------------------------------------------------------------------------


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


def _preact_resnet(params: PreActResNetParams, in_channels: int, num_classes: int) -> PreActResNet:
    """PreAct-ResNet-18/34 with the CIFAR stem (11.2M / 21.3M params at width 64)."""
    return PreActResNet(RESNET_BLOCKS[params.depth][1], in_channels, num_classes, params.width,
                        params.strides)


# --- VGG ------------------------------------------------------------------------------------------

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
        _init_like_torchvision(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


class VGGParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    depth: Literal[11, 13, 16, 19] = Field(default=16, description="VGG configuration A/B/D/E.")
    width: int = Field(default=64, ge=1, description="Channels of the first conv (64 = standard; "
                                                     "the others scale with it).")
    strides: str = _strides_field(5, "22222", "Stride of each of the 5 max-pools (1 removes it)")
    batch_norm: bool = Field(default=True, description="BatchNorm after every conv (VGG-bn).")
    head: Literal["linear", "mlp"] = Field(
        default="linear", description="linear: 512→classes (CIFAR VGG, 14.7M for VGG-16-BN); "
                                      "mlp: rcm's 512→256→256→classes with dropout (14.9M).")


def _vgg(params: VGGParams, in_channels: int, num_classes: int) -> VGG:
    """VGG-11/13/16/19 (BN), CIFAR style: global pooling, 1×1 final map at 32×32 with 22222."""
    return VGG(VGG_LAYOUTS[params.depth], in_channels, num_classes, params.width, params.strides,
               params.batch_norm, params.head)


# --- AlexNet --------------------------------------------------------------------------------------


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


class AlexNetParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    width: int = Field(default=64, ge=1, description="Channels of the first conv (64 = standard).")
    strides: str = _strides_field(4, "2222", "Stride of conv1 and of the 3 max-pools (1122: larger "
                                             "maps)")
    dropout: float = Field(default=0.5, ge=0, lt=1, description="Dropout before the two hidden FCs.")


def _alexnet(params: AlexNetParams, in_channels: int, num_classes: int) -> AlexNet:
    """CIFAR AlexNet of the larger-feature-map study; 2222 needs inputs of at least 15×15."""
    return AlexNet(in_channels, num_classes, params.width, params.strides, params.dropout)


# --- DenseNet -------------------------------------------------------------------------------------


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


class DenseNetParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    blocks: list[Annotated[int, Field(ge=1)]] = Field(
        default=[6, 12, 24, 16], min_length=4, max_length=4,
        description="Layers in each of the 4 dense blocks ([6,12,24,16] = DenseNet-121).")
    growth: int = Field(default=32, ge=1, description="Growth rate k (channels each layer adds).")
    reduction: float = Field(default=0.5, gt=0, le=1, description="Transition compression.")
    strides: str = _strides_field(3, "222", "Pooling stride of each of the 3 transitions")


def _densenet(params: DenseNetParams, in_channels: int, num_classes: int) -> DenseNet:
    """DenseNet-BC with the CIFAR stem; DenseNet-121 (k=32) has 7.0M params."""
    return DenseNet(params.blocks, in_channels, num_classes, params.growth, params.reduction,
                    params.strides)


# --- MobileNetV2 ----------------------------------------------------------------------------------


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
        _init_like_torchvision(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


class MobileNetV2Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    width_mult: float = Field(default=1.0, gt=0, description="Channel multiplier (rounded to 8s).")
    strides: str = _strides_field(8, "11122121", "Stride of the stem and of the 7 stages")
    dropout: float = Field(default=0.2, ge=0, lt=1, description="Dropout before the classifier.")


def _mobilenet_v2(params: MobileNetV2Params, in_channels: int, num_classes: int) -> MobileNetV2:
    """MobileNetV2, CIFAR variant (stride 1 in the stem and first stages); 2.24M params."""
    return MobileNetV2(in_channels, num_classes, params.width_mult, params.strides, params.dropout)


# --- WideResNet with per-stage depth, width and activation (RobustWideResNet) ---------------------


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


class WideResNetParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

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
    strides: str = _strides_field(3, "122", "Stride of each of the 3 stages")
    drop_rate: float = Field(default=0.0, ge=0, lt=1, description="Dropout between a block's convs.")


def _wide_resnet(params: WideResNetParams, in_channels: int, num_classes: int) -> WideResNet:
    """WideResNet with per-stage depth/width/activation (WRN-34-10: 46.2M, WRN-34-R: 68.1M)."""
    return WideResNet(params.depths, params.widths, list(params.activations), in_channels,
                      num_classes, params.strides, params.drop_rate, params.final_activation)


# --- registration ---------------------------------------------------------------------------------


@hookimpl
def harness_register_architectures(registry):
    registry.add("small-cnn", small_cnn, params=SmallCNNParams,
                 description="two 3×3 convs, max-pool, two FC layers",
                 test_params={"channels": 4, "hidden": 16})
    thin = {"width": 1}
    zoo: list[tuple[str, Builder, type[BaseModel], str, dict[str, Any], tuple[int, int, int],
                    dict[str, Any]]] = [
        ("resnet18", _resnet18, ResNet18Params,
         "ResNet-18, CIFAR stem (3×3 stride 1, no max-pool), any input size",
         {"width": 4}, (1, 8, 8), thin),
        ("resnet", _resnet, ResNetParams,
         "ResNet-18/34/50 (depth), CIFAR stem, per-stage strides and width",
         {"depth": 50, "width": 2}, (1, 8, 8), thin),
        ("preact-resnet", _preact_resnet, PreActResNetParams,
         "PreAct-ResNet-18/34 (depth), CIFAR stem, final BN-ReLU, per-stage strides",
         {"depth": 18, "width": 4}, (1, 8, 8), thin),
        ("vgg", _vgg, VGGParams,
         "VGG-11/13/16/19 with BN, CIFAR style (global pooling), a stride digit per max-pool",
         {"depth": 11, "width": 4, "strides": "11222", "head": "mlp"}, (1, 8, 8), thin),
        ("alexnet", _alexnet, AlexNetParams,
         "CIFAR AlexNet of the larger-feature-map study (rcm), strides for conv1 and 3 pools",
         {"width": 4, "strides": "1122"}, (1, 8, 8), thin),
        ("densenet", _densenet, DenseNetParams,
         "DenseNet-BC, CIFAR variant (DenseNet-121 by default, growth 32)",
         {"blocks": [1, 2, 1, 1], "growth": 4}, (1, 8, 8), {"growth": 1}),
        ("mobilenet-v2", _mobilenet_v2, MobileNetV2Params,
         "MobileNetV2, CIFAR variant (stride 1 in the stem and first two stages)",
         {"width_mult": 0.25}, (1, 8, 8), {"width_mult": 0.01}),
        ("wide-resnet", _wide_resnet, WideResNetParams,
         "WideResNet with per-stage depth, width and activation (Huang et al. 2021)",
         {"depths": [1, 2, 1], "widths": [0.25, 0.25, 0.25],
          "activations": ["relu", "silu", "prelu"]}, (1, 8, 8),
         {"widths": [0.0625] * 3}),
    ]
    for name, build, params, description, test_params, shape, thin_params in zoo:
        registry.add(name, _factory(build), params=params, description=description,
                     test_params=test_params, test_input_shape=shape,
                     check_input=_input_check(build, thin_params))
