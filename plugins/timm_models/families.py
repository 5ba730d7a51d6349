"""The registration table of the named factories (``FAMILIES``) and what each row becomes.

A family's factory adapts timm's arguments to the input (``geometry``), then builds
(``builders``); its ``check_input`` is the pure size rule, plus a meta-device probe when the
user's ``kwargs`` may change the geometry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from harness import DataInfo, UserError, normalized

from .builders import build_checked, probe, swin_halves_down, timm_name
from .geometry import adapted_kwargs, input_problem
from .params import (
    CaiTParams,
    CoAtNetParams,
    ConvMixerParams,
    ConvNeXtParams,
    DeiTParams,
    LeViTParams,
    MixerParams,
    PoolFormerParams,
    PVTv2Params,
    SwinParams,
    TimmKwargs,
    ViTParams,
)


@dataclass(frozen=True)
class Family:
    """One named factory: its params model, description and conformance settings."""

    params: type[TimmKwargs]
    description: str
    test_params: dict[str, Any]
    test_input_shape: tuple[int, int, int]


TINY_VIT = {"depth": 1, "embed_dim": 16, "num_heads": 2}
FAMILIES: dict[str, Family] = {
    "vit": Family(ViTParams, "ViT-Tiny/Small/Base (timm), img_size and patch size from the input "
                             "(patch 4 at 32×32, 2 at 8×8)", {"kwargs": TINY_VIT}, (1, 8, 8)),
    "deit": Family(DeiTParams, "DeiT-Tiny/Small/Base (timm, no distillation token), patch size from "
                               "the input like vit", {"kwargs": TINY_VIT}, (1, 8, 8)),
    "cait": Family(CaiTParams, "CaiT (timm, LayerScale + class attention), patch size from the input "
                               "like vit", {"kwargs": TINY_VIT}, (1, 8, 8)),
    "mlp-mixer": Family(MixerParams, "MLP-Mixer S/B/L (timm), patch size from the input like vit",
                        {"kwargs": {"num_blocks": 1, "embed_dim": 16}}, (1, 8, 8)),
    "swin": Family(SwinParams, "Swin Transformer (timm), img_size, patch and window from the input",
                   {"kwargs": {"embed_dim": 8, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 1, 1]}},
                   (1, 8, 8)),
    "pvt-v2": Family(PVTv2Params, "PVT-v2 (timm), spatial-reduction ratios from the input size",
                     {"kwargs": {"embed_dims": [8, 8, 8, 8], "depths": [1, 1, 1, 1],
                                 "num_heads": [1, 1, 1, 1]}}, (1, 8, 8)),
    "coatnet": Family(CoAtNetParams, "CoAtNet (timm MaxxViT), img_size from the input; sides must be "
                                     "multiples of 32",
                      {"kwargs": {"embed_dim": [16, 16, 32, 32], "depths": [1, 1, 1, 1], "stem_width": 8,
                                  "transformer_dim_head": 8}}, (1, 32, 32)),
    "levit": Family(LeViTParams, "LeViT (timm, one head), img_size from the input; sides must be "
                                 "multiples of 16",
                    {"kwargs": {"embed_dim": [16, 16, 16], "depth": [1, 1, 1], "num_heads": [1, 1, 1],
                                "key_dim": 4}}, (1, 16, 16)),
    "convnext": Family(ConvNeXtParams, "ConvNeXt (timm), patch-1 stem below 32×32 (total stride 8)",
                       {"kwargs": {"dims": [8, 8, 8, 8], "depths": [1, 1, 1, 1]}}, (1, 8, 8)),
    "poolformer": Family(PoolFormerParams, "PoolFormer (timm MetaFormer), 3×3 stride-1 stem below 32×32",
                         {"kwargs": {"dims": [8, 8, 8, 8], "depths": [1, 1, 1, 1]}}, (1, 8, 8)),
    "convmixer": Family(ConvMixerParams, "ConvMixer (timm class), 256/8 kernel 5 by default, patch 2 at "
                                         "32×32 and 1 at 8×8", {"dim": 8, "depth": 1}, (1, 8, 8)),
}


def named_factory(family: str) -> Callable[[Any, DataInfo], nn.Module]:
    def factory(params: Any, info: DataInfo) -> nn.Module:
        problem = size_problem(family, params, info.input_shape)
        if problem:  # normally caught by 'harness validate' through check_input
            raise UserError(problem)
        kw = adapted_kwargs(family, params, info.input_shape)
        return normalized(build_checked(family, params, info.input_shape[0], info.num_classes, kw), info)

    factory.__name__ = factory.__qualname__ = family.replace("-", "_")
    factory.__doc__ = f"{FAMILIES[family].description}, behind Normalize."
    return factory


def size_problem(family: str, params: Any, shape: tuple[int, ...]) -> str | None:
    """The pure size rule for the installed timm (timm is imported only to ask how Swin rounds)."""
    return input_problem(family, params, shape, family == "swin" and swin_halves_down())


def named_check(family: str) -> Callable[[Any, tuple[int, ...]], str | None]:
    """The pure size rule; with user ``kwargs`` (which may change the geometry) also a meta probe."""

    def check(params: Any, shape: tuple[int, ...]) -> str | None:
        problem = size_problem(family, params, shape)
        if problem or not params.kwargs:
            return problem
        kw = adapted_kwargs(family, params, shape)
        return probe(lambda: build_checked(family, params, shape[0], 2, kw), tuple(shape),
                     f"{family} ({timm_name(family, params)}) with kwargs {params.kwargs}")

    return check


def minimum_input(family: str, params: Any | None = None) -> int:
    """Smallest square side that ``family`` (with ``params``, default ones if None) takes."""
    if params is None:
        params = FAMILIES[family].params()
    side = 1
    while size_problem(family, params, (3, side, side)) is not None:
        side += 1
        if side > 4096:
            raise ValueError(f"{family}: no square input up to 4096×4096 fits these params")
    return side
