"""The zoo's registration table: one ``ZooEntry`` row per factory, and what a row becomes.

Each row names a family module's builder (``build(params, in_channels, num_classes)``), which
``factory_for`` puts behind the dataset's ``Normalize``; ``input_check`` turns the same builder
into the ``check_input`` that ``harness validate`` asks, so a too-small input is rejected with
the smallest size it takes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import torch
from pydantic import BaseModel
from torch import nn

from harness import DataInfo, normalized

from .alexnet import AlexNetParams, alexnet
from .backbone import Builder
from .densenet import DenseNetParams, densenet
from .mobilenet import MobileNetV2Params, mobilenet_v2
from .preact import PreActResNetParams, preact_resnet
from .resnet import ResNet18Params, ResNetParams, resnet, resnet18
from .vgg import VGGParams, vgg
from .wideresnet import WideResNetParams, wide_resnet

#: The thin copy ``input_check`` runs: spatial sizes do not depend on width.
THIN: Mapping[str, Any] = {"width": 1}


class ZooEntry(NamedTuple):
    """One registered zoo factory and its conformance settings."""

    name: str
    build: Builder
    params: type[BaseModel]
    description: str
    test_params: dict[str, Any]
    test_input_shape: tuple[int, int, int] = (1, 8, 8)
    #: params overrides of the thin copy that ``input_check`` builds
    thin: Mapping[str, Any] = THIN


ZOO: tuple[ZooEntry, ...] = (
    ZooEntry("resnet18", resnet18, ResNet18Params,
             "ResNet-18, CIFAR stem (3×3 stride 1, no max-pool), any input size", {"width": 4}),
    ZooEntry("resnet", resnet, ResNetParams,
             "ResNet-18/34/50 (depth), CIFAR stem, per-stage strides and width",
             {"depth": 50, "width": 2}),
    ZooEntry("preact-resnet", preact_resnet, PreActResNetParams,
             "PreAct-ResNet-18/34 (depth), CIFAR stem, final BN-ReLU, per-stage strides",
             {"depth": 18, "width": 4}),
    ZooEntry("vgg", vgg, VGGParams,
             "VGG-11/13/16/19 with BN, CIFAR style (global pooling), a stride digit per max-pool",
             {"depth": 11, "width": 4, "strides": "11222", "head": "mlp"}),
    ZooEntry("alexnet", alexnet, AlexNetParams,
             "CIFAR AlexNet of the larger-feature-map study (rcm), strides for conv1 and 3 pools",
             {"width": 4, "strides": "1122"}),
    ZooEntry("densenet", densenet, DenseNetParams,
             "DenseNet-BC, CIFAR variant (DenseNet-121 by default, growth 32)",
             {"blocks": [1, 2, 1, 1], "growth": 4}, thin={"growth": 1}),
    ZooEntry("mobilenet-v2", mobilenet_v2, MobileNetV2Params,
             "MobileNetV2, CIFAR variant (stride 1 in the stem and first two stages)",
             {"width_mult": 0.25}, thin={"width_mult": 0.01}),
    ZooEntry("wide-resnet", wide_resnet, WideResNetParams,
             "WideResNet with per-stage depth, width and activation (Huang et al. 2021)",
             {"depths": [1, 2, 1], "widths": [0.25, 0.25, 0.25],
              "activations": ["relu", "silu", "prelu"]}, thin={"widths": [0.0625] * 3}),
)


def factory_for(build: Builder) -> Callable[[Any, DataInfo], nn.Module]:
    """``factory(params, info)``: the backbone for the dataset's channels, behind Normalize."""

    def factory(params: Any, info: DataInfo) -> nn.Module:
        return normalized(build(params, info.input_shape[0], info.num_classes), info)

    factory.__name__ = factory.__qualname__ = build.__name__
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


def input_check(build: Builder, thin: Mapping[str, Any]) -> Callable[[Any, tuple[int, ...]], str | None]:
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
