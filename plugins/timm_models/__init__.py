"""Vision transformers and modern nets from timm 1.0.31, adapted to the dataset's input size.

timm's models are built for 224×224 ImageNet. On 32×32 CIFAR or 8×8 digits most of them either
refuse the input (ViT-style position tables sized for 224) or shrink it to nothing (a total
stride of 32). Each named factory here (``vit``, ``deit``, ``cait``, ``swin``, ``pvt-v2``,
``coatnet``, ``levit``, ``convnext``, ``poolformer``, ``convmixer``, ``mlp-mixer``) derives the
size-dependent arguments from ``info.input_shape`` (see ``adapted_kwargs``): ``img_size``, the
patch size (16 at ≥224, 4 at CIFAR scale, 2 at digits scale for ViTs), Swin's window, PVT's
spatial-reduction ratios, ConvNeXt's patch stem and PoolFormer's stem stride. Inputs a model
cannot take are rejected by ``input_problem`` through the registry's ``check_input``, i.e. by
``harness validate``, with the reason and a way out, not by a shape error deep in a forward.

``timm`` is the generic passthrough: any timm model name plus keyword overrides, checked at
validation time by building it on the meta device and running a shape-only forward.

Activations: timm mixes ``torch.nn`` activations with its own ``timm.layers.activations``
classes (GELU, Sigmoid, …) that do *not* subclass ``torch.nn``'s; see ``activation_classes``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from torch import nn

from harness import DataInfo, LocalFile, UserError, hookimpl, normalized

__version__ = "1.0"

Size2 = tuple[int, int]

#: Keyword arguments that come from the dataset or from this plugin, never from ``kwargs``.
RESERVED_KWARGS = ("num_classes", "in_chans", "pretrained", "pretrained_cfg_overlay", "checkpoint_path")

SMALL_INPUT_FACTORIES = ("vit (patch 2 at 8×8, e.g. preset vit-t-patch2-digits), deit, cait, swin, "
                         "pvt-v2, convnext, poolformer, convmixer or mlp-mixer")


# --- parameters -----------------------------------------------------------------------------------


class TimmKwargs(BaseModel):
    """``kwargs``: timm keyword overrides, shared by every factory of this plugin."""

    model_config = ConfigDict(extra="forbid")

    kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments for timm (depth, embed_dim, drop_path_rate, img_size…); they "
                    "win over the automatic adaptation to the input size.")

    @field_validator("kwargs")
    @classmethod
    def _not_reserved(cls, value: dict[str, Any]) -> dict[str, Any]:
        taken = [key for key in RESERVED_KWARGS if key in value]
        if taken:
            raise ValueError(f"{', '.join(taken)} cannot be set in kwargs: num_classes and in_chans "
                             "come from the dataset, weights from pretrained/checkpoint")
        return value


def _patch_field(rule: str) -> Any:
    return Field(default=None, ge=1, description=f"Patch side; default {rule}, lowered if needed "
                                                  "to divide both sides of the input.")


class ViTParams(TimmKwargs):
    size: Literal["tiny", "small", "base"] = Field(
        default="tiny", description="vit_{size}_patch16_224: tiny 5.4M, small 21.3M, base 85.2M params.")
    patch_size: int | None = _patch_field("16 at ≥224, 4 at ≥32 (CIFAR), else 2 (digits)")


class DeiTParams(ViTParams):
    size: Literal["tiny", "small", "base"] = Field(
        default="tiny", description="deit_{size}_patch16_224 (no distillation token).")


class CaiTParams(TimmKwargs):
    size: Literal["xxs24", "xxs36", "xs24", "s24", "s36"] = Field(
        default="xxs24", description="cait_{size}_224 (xxs24: 11.6M params at 32×32).")
    patch_size: int | None = _patch_field("16 at ≥224, 4 at ≥32 (CIFAR), else 2 (digits)")


class MixerParams(TimmKwargs):
    size: Literal["s", "b", "l"] = Field(
        default="s", description="Mixer-S/B/L: 8/12/24 blocks of width 512/768/1024.")
    patch_size: int | None = _patch_field("16 at ≥224, 4 at ≥32 (CIFAR), else 2 (digits)")


class SwinParams(TimmKwargs):
    size: Literal["tiny", "small", "base"] = Field(
        default="tiny", description="swin_{size}_patch4_window7_224 (tiny: 27.5M params).")
    patch_size: int | None = _patch_field("4 at ≥32, 2 at ≥16, else 1 (stage maps 8, 4, 2, 1 at "
                                          "32×32 and at 8×8)")
    window_size: int | None = Field(
        default=None, ge=1, description="Attention window; default 7 when the first stage map is at "
                                        "least 56 wide (224 inputs), else 4.")


class PVTv2Params(TimmKwargs):
    size: Literal["b0", "b1", "b2", "b3", "b4", "b5"] = Field(
        default="b0", description="pvt_v2_{size} (b0: 2.9M params at 32×32 with sr 1).")
    sr_ratios: list[int] | None = Field(
        default=None, min_length=4, max_length=4,
        description="Spatial reduction of keys/values per stage; default min(timm's (8,4,2,1), "
                    "map // 7) so at least 7×7 keys remain as at 224 (all 1 below 56×56 inputs).")

    @field_validator("sr_ratios")
    @classmethod
    def _positive(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and min(value) < 1:
            raise ValueError("sr_ratios must be positive integers")
        return value


class CoAtNetParams(TimmKwargs):
    size: Literal["0", "1", "2", "3", "nano-rw", "0-rw", "1-rw", "2-rw", "3-rw", "bn-0-rw",
                  "nano-cc"] = Field(
        default="0", description="coatnet_{size}_224 ('0': the paper's CoAtNet-0, 24.2M params at 32×32; "
                                 "'-rw': timm's variants).")


class LeViTParams(TimmKwargs):
    size: Literal["128s", "128", "192", "256", "384"] = Field(
        default="128s", description="levit_{size} (128s: 7.0M params), single head (no distillation).")


class ConvNeXtParams(TimmKwargs):
    size: Literal["atto", "femto", "pico", "nano", "tiny", "small", "base"] = Field(
        default="atto", description="convnext_{size} (atto 3.4M, tiny 27.8M params).")
    patch_size: int | None = Field(
        default=None, ge=1, description="Patchify stem; default 4 at ≥32 (timm, total stride 32), "
                                        "else 1 (total stride 8, so 8×8 inputs end in 1×1).")


class PoolFormerParams(TimmKwargs):
    size: Literal["s12", "s24", "s36", "m36", "m48"] = Field(
        default="s12", description="poolformer_{size} (s12: 11.4M params).")
    stem_stride: Literal[1, 2, 4] | None = Field(
        default=None, description="4: timm's 7×7 stride-4 stem (default at ≥32); 1 or 2: a 3×3 stem "
                                  "with that stride (default 1 below 32, a CIFAR-style stem).")


class ConvMixerParams(TimmKwargs):
    dim: int = Field(default=256, ge=1, description="Channels (ConvMixer-256/8 is the CIFAR model).")
    depth: int = Field(default=8, ge=1, description="Number of mixer blocks.")
    kernel_size: int = Field(default=5, ge=1, description="Depthwise kernel (5 for CIFAR, 9 for ImageNet).")
    patch_size: int | None = _patch_field("7 at ≥224, 2 at ≥32 (CIFAR), else 1")


class GenericParams(TimmKwargs):
    model: str = Field(description="Any timm model name (timm.list_models()), e.g. 'resnet18'.")
    pretrained: bool = Field(
        default=False, description="Load weights; needs 'checkpoint' (nothing is downloaded).")
    checkpoint: LocalFile | None = Field(
        default=None, description="A local weights file (.safetensors or .pth) loaded through timm, "
                                  "which drops a mismatched classifier and adapts in_chans; its "
                                  "content is part of the cell hash.")

    @model_validator(mode="after")
    def _weights_are_local(self) -> GenericParams:
        if self.pretrained and not self.checkpoint:
            raise ValueError(
                "pretrained = true needs checkpoint = a local weights file: nothing is downloaded at "
                "run time. Copy it from timm's cache, e.g. ~/.cache/huggingface/hub/"
                "models--timm--<name>/snapshots/*/model.safetensors")
        if self.checkpoint and not self.pretrained:
            raise ValueError("checkpoint is only read with pretrained = true")
        return self


# --- input-size rules (pure: no timm import, so 'harness validate' stays fast) --------------------


def _hw(shape: tuple[int, ...]) -> Size2:
    return int(shape[-2]), int(shape[-1])


def _dividing_patch(size: Size2, preferred: int) -> int:
    """The largest patch ≤ ``preferred`` dividing both sides (timm would drop border pixels)."""
    return max(p for p in range(1, preferred + 1) if size[0] % p == 0 and size[1] % p == 0)


def _vit_patch(size: Size2) -> int:
    side = min(size)
    return _dividing_patch(size, 16 if side >= 224 else 4 if side >= 32 else 2)


def _swin_patch(size: Size2) -> int:
    side = min(size)
    return _dividing_patch(size, 4 if side >= 32 else 2 if side >= 16 else 1)


def _convmixer_patch(size: Size2) -> int:
    side = min(size)
    return _dividing_patch(size, 7 if side >= 224 else 2 if side >= 32 else 1)


PVT_DEFAULT_SR = (8, 4, 2, 1)


def _pvt_maps(size: Size2) -> list[int]:
    """Smaller side of each stage's map: 7×7 stride-4 overlapping stem, then 3×3 stride 2 (ceil)."""
    side = math.ceil(min(size) / 4)
    maps = [side]
    for _ in range(3):
        side = math.ceil(side / 2)
        maps.append(side)
    return maps


def _pvt_sr(size: Size2) -> list[int]:
    maps = _pvt_maps(size)
    return [min(default, max(1, side // 7)) for default, side in zip(PVT_DEFAULT_SR, maps, strict=True)]


def _convnext_stride(patch: int) -> int:
    """timm's ConvNeXt: patch stem, stage 0 downsamples only if the stem stride is 2, then 3 more."""
    return 8 * (4 if patch == 2 else patch)


def _geometry(family: str, params: Any, size: Size2) -> dict[str, Any]:
    """Size-dependent keyword arguments (before the user's ``kwargs``)."""
    if family in ("vit", "deit", "cait", "mlp-mixer"):
        return {"img_size": size, "patch_size": params.patch_size or _vit_patch(size)}
    if family == "swin":
        patch = params.patch_size or _swin_patch(size)
        window = params.window_size or (7 if min(size) // patch >= 56 else 4)
        return {"img_size": size, "patch_size": patch, "window_size": window}
    if family == "pvt-v2":
        return {"sr_ratios": tuple(params.sr_ratios or _pvt_sr(size))}
    if family in ("coatnet", "levit"):
        return {"img_size": size}
    if family == "convnext":
        return {"patch_size": params.patch_size or (4 if min(size) >= 32 else 1)}
    if family == "poolformer":
        return {"stem_stride": params.stem_stride or (4 if min(size) >= 32 else 1)}
    if family == "convmixer":
        return {"patch_size": params.patch_size or _convmixer_patch(size)}
    return {}


def adapted_kwargs(family: str, params: Any, shape: tuple[int, ...]) -> dict[str, Any]:
    """What the factory passes to timm for inputs of ``shape``: the adaptation, then ``kwargs``."""
    return {**_geometry(family, params, _hw(shape)), **params.kwargs}


def _size_text(size: Size2) -> str:
    return f"{size[0]}×{size[1]}"


def _multiple_problem(family: str, size: Size2, stride: int, why: str) -> str | None:
    if size[0] % stride == 0 and size[1] % stride == 0 and min(size) >= stride:
        return None
    too = "too small" if min(size) < stride else "not a multiple of it"
    return (f"{family} needs inputs whose sides are multiples of {stride} (total stride {stride}; {why}), "
            f"and {_size_text(size)} is {too}: for small inputs use {SMALL_INPUT_FACTORIES}")


def input_problem(family: str, params: Any, shape: tuple[int, ...]) -> str | None:
    """Why ``family`` with ``params`` cannot take inputs of ``shape``, or None if it can."""
    if len(shape) != 3:
        return f"{family} needs (C, H, W) images, not inputs of shape {tuple(shape)}"
    size = _hw(shape)
    kw = adapted_kwargs(family, params, shape)
    if family in ("vit", "deit", "cait", "mlp-mixer", "swin", "convmixer"):
        patch = kw.get("patch_size")
        if isinstance(patch, int) and (size[0] % patch or size[1] % patch):
            return (f"{family}: patch_size {patch} does not divide {_size_text(size)} inputs (timm would "
                    f"silently ignore the border pixels); use patch_size = {_dividing_patch(size, patch)} "
                    "or leave it unset to adapt it")
    if family == "coatnet":
        return _multiple_problem(family, size, 32, "timm sizes its relative-position tables for "
                                                   "img_size // 32 and an odd map breaks them")
    if family == "levit":
        return _multiple_problem(family, size, 16, "its 16×16 conv stem feeds attention tables sized "
                                                   "for img_size // 16")
    if family == "pvt-v2":
        sr = kw.get("sr_ratios")
        if isinstance(sr, list | tuple) and len(sr) == 4:
            for stage, (ratio, side) in enumerate(zip(sr, _pvt_maps(size), strict=True)):
                if ratio > side:
                    return (f"pvt-v2: sr_ratios[{stage}] = {ratio} is larger than the {side}×{side} map of "
                            f"stage {stage + 1} at {_size_text(size)} inputs (its reduction conv has "
                            f"kernel {ratio}); use at most {side} or leave sr_ratios unset to adapt it")
    if family == "convnext":
        patch = kw.get("patch_size")
        if isinstance(patch, int) and min(size) < _convnext_stride(patch):
            stride = _convnext_stride(patch)
            return (f"convnext with patch_size {patch} has total stride {stride}, too large for "
                    f"{_size_text(size)} inputs (a 2×2 downsampling conv meets a 1×1 map); use "
                    "patch_size = 1 (total stride 8) or leave it unset to adapt it")
    if family == "poolformer" and kw.get("stem_stride") == 4 and min(size) < 3:
        return (f"poolformer's 7×7 stride-4 stem needs inputs of at least 3×3, not {_size_text(size)}; "
                "use stem_stride = 1")
    return None


def minimum_input(family: str, params: Any | None = None) -> int:
    """Smallest square side that ``family`` (with ``params``, default ones if None) takes."""
    if params is None:
        params = FAMILIES[family].params()
    side = 1
    while input_problem(family, params, (3, side, side)) is not None:
        side += 1
        if side > 4096:
            raise ValueError(f"{family}: no square input up to 4096×4096 fits these params")
    return side


# --- building -------------------------------------------------------------------------------------

#: timm entrypoints that fix these architecture arguments (``dict(x=…, **kwargs)`` raises on an
#: override), so their factories build timm's model class directly with the same settings.
MIXER_SIZES = {"s": {"num_blocks": 8, "embed_dim": 512}, "b": {"num_blocks": 12, "embed_dim": 768},
               "l": {"num_blocks": 24, "embed_dim": 1024}}
POOLFORMER_SIZES = {"s12": ([2, 2, 6, 2], [64, 128, 320, 512], 1e-5),
                    "s24": ([4, 4, 12, 4], [64, 128, 320, 512], 1e-5),
                    "s36": ([6, 6, 18, 6], [64, 128, 320, 512], 1e-6),
                    "m36": ([6, 6, 18, 6], [96, 192, 384, 768], 1e-6),
                    "m48": ([8, 8, 24, 8], [96, 192, 384, 768], 1e-6)}


def _timm_name(family: str, params: Any) -> str:
    size = getattr(params, "size", "")
    return {
        "vit": f"vit_{size}_patch16_224", "deit": f"deit_{size}_patch16_224", "cait": f"cait_{size}_224",
        "mlp-mixer": f"mixer_{size}16_224", "swin": f"swin_{size}_patch4_window7_224",
        "pvt-v2": f"pvt_v2_{size}", "coatnet": f"coatnet_{size.replace('-', '_')}_224",
        "levit": f"levit_{size}", "convnext": f"convnext_{size}", "poolformer": f"poolformer_{size}",
        "convmixer": "ConvMixer", "timm": getattr(params, "model", ""),
    }[family]


def _create(name: str, in_chans: int, num_classes: int, kwargs: dict[str, Any]) -> nn.Module:
    """``timm.create_model`` with a UserError that says which keyword timm refused and why."""
    import timm

    try:
        return timm.create_model(name, pretrained=False, in_chans=in_chans, num_classes=num_classes,
                                 **kwargs)
    except TypeError as exc:
        raise UserError(_kwargs_error(name, exc)) from None


def _kwargs_error(name: str, exc: Exception) -> str:
    text = str(exc)
    if "multiple values for keyword argument" in text:
        return (f"timm's {name} fixes an argument you override in kwargs ({text}); its entrypoint "
                "cannot change it: use this plugin's factory for that family, which builds timm's "
                "class directly (mlp-mixer, poolformer, convmixer)")
    return f"timm's {name} does not accept these kwargs: {text}"


def _build_mixer(params: MixerParams, in_chans: int, num_classes: int, kw: dict[str, Any]) -> nn.Module:
    """timm's Mixer-S/B/L settings on its MlpMixer class, with a small random head.

    timm zero-initialises Mixer's classifier (as the JAX original does): an untrained model is then
    constant and its input gradient exactly zero, which the harness reads as gradient masking. A
    truncated-normal head (std 0.02, timm's init for ViT heads) trains the same way.
    """
    from timm.layers import trunc_normal_
    from timm.models.mlp_mixer import MlpMixer

    model = MlpMixer(**{**MIXER_SIZES[params.size], "in_chans": in_chans, "num_classes": num_classes, **kw})
    if isinstance(model.head, nn.Linear):
        trunc_normal_(model.head.weight, std=0.02)
    return model


def _build_convmixer(params: ConvMixerParams, in_chans: int, num_classes: int,
                     kw: dict[str, Any]) -> nn.Module:
    from timm.models.convmixer import ConvMixer

    args = {"dim": params.dim, "depth": params.depth, "kernel_size": params.kernel_size, **kw}
    return ConvMixer(in_chans=in_chans, num_classes=num_classes, **args)


def _build_poolformer(params: PoolFormerParams, in_chans: int, num_classes: int,
                      kw: dict[str, Any]) -> nn.Module:
    """timm's poolformer_{size} settings on its MetaFormer class, with a stem for small inputs."""
    from timm.layers import trunc_normal_
    from timm.models.metaformer import GroupNorm1, MetaFormer

    kw = dict(kw)
    stride = kw.pop("stem_stride")
    depths, dims, layer_scale = POOLFORMER_SIZES[params.size]
    args = {"depths": depths, "dims": dims, "downsample_norm": None, "mlp_act": nn.GELU, "mlp_bias": True,
            "norm_layers": GroupNorm1, "layer_scale_init_values": layer_scale,
            "res_scale_init_values": None, "use_mlp_head": False, **kw}
    model = MetaFormer(in_chans=in_chans, num_classes=num_classes, **args)
    if stride != 4:  # timm's stem is a fixed 7×7 stride-4 conv: 8×8 digits would start at 2×2
        conv = nn.Conv2d(in_chans, model.stem.conv.out_channels, 3, stride, 1)
        trunc_normal_(conv.weight, std=0.02)  # MetaFormer's own init for convs
        nn.init.zeros_(conv.bias)
        model.stem.conv = conv
    return model


def _build(family: str, params: Any, in_chans: int, num_classes: int, kw: dict[str, Any]) -> nn.Module:
    if family == "mlp-mixer":
        return _build_mixer(params, in_chans, num_classes, kw)
    if family == "convmixer":
        return _build_convmixer(params, in_chans, num_classes, kw)
    if family == "poolformer":
        return _build_poolformer(params, in_chans, num_classes, kw)
    if family == "levit":
        kw = {"distilled": False, **kw}  # no distillation training here: one head, not two averaged
    return _create(_timm_name(family, params), in_chans, num_classes, kw)


def _build_checked(family: str, params: Any, in_chans: int, num_classes: int,
                   kw: dict[str, Any]) -> nn.Module:
    try:
        return _build(family, params, in_chans, num_classes, kw)
    except TypeError as exc:  # the classes built directly reject unknown kwargs with a TypeError
        raise UserError(_kwargs_error(_timm_name(family, params), exc)) from None


def _probe(build: Callable[[], nn.Module], shape: tuple[int, ...], what: str) -> str | None:
    """Build on the meta device and run a shape-only forward: the error a real run would hit."""
    try:
        with torch.random.fork_rng(devices=[]), torch.device("meta"):  # validation leaves the RNG alone
            model = build()
            with torch.no_grad():
                model.eval()(torch.empty(1, *shape, device="meta"))
    except UserError as exc:
        return str(exc)
    except Exception as exc:  # any failure here is the model refusing this input or these kwargs
        text = str(exc).strip().rstrip(".")
        return (f"{what} does not run on inputs of shape {tuple(shape)}: "
                f"{type(exc).__name__}: {text}{_hint(exc)}")
    return None


def _hint(exc: Exception) -> str:
    text = str(exc)
    if "doesn't match model" in text or "Input height" in text or "Input width" in text:
        return ("; timm's vision transformers are sized for 224×224: set kwargs img_size (and "
                "patch_size), or use this plugin's factories, which adapt them")
    if "too small" in text or "can't be greater than actual input size" in text:
        return "; the input is too small for the model's total stride"
    return ""


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


def _named_factory(family: str) -> Callable[[Any, DataInfo], nn.Module]:
    def factory(params: Any, info: DataInfo) -> nn.Module:
        problem = input_problem(family, params, info.input_shape)
        if problem:  # normally caught by 'harness validate' through check_input
            raise UserError(problem)
        kw = adapted_kwargs(family, params, info.input_shape)
        return normalized(_build_checked(family, params, info.input_shape[0], info.num_classes, kw), info)

    factory.__name__ = factory.__qualname__ = family.replace("-", "_")
    factory.__doc__ = f"{FAMILIES[family].description}, behind Normalize."
    return factory


def _named_check(family: str) -> Callable[[Any, tuple[int, ...]], str | None]:
    """The pure size rule; with user ``kwargs`` (which may change the geometry) also a meta probe."""

    def check(params: Any, shape: tuple[int, ...]) -> str | None:
        problem = input_problem(family, params, shape)
        if problem or not params.kwargs:
            return problem
        kw = adapted_kwargs(family, params, shape)
        return _probe(lambda: _build_checked(family, params, shape[0], 2, kw), tuple(shape),
                      f"{family} ({_timm_name(family, params)}) with kwargs {params.kwargs}")

    return check


# --- the generic passthrough ----------------------------------------------------------------------


def _known_model(name: str) -> None:
    import timm

    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UserError(f"timm has no model {name!r}.{hint} See timm.list_models('{name[:4]}*').")


def _local_checkpoint(params: GenericParams) -> str:
    path = Path(params.checkpoint or "").expanduser()
    if not path.is_file():
        raise UserError(f"checkpoint {params.checkpoint!r} is not a file: pretrained weights must be "
                        "available locally (nothing is downloaded at run time)")
    return str(path)


def _generic_build(params: GenericParams, in_chans: int, num_classes: int) -> nn.Module:
    _known_model(params.model)
    if not params.pretrained:
        return _create(params.model, in_chans, num_classes, params.kwargs)
    import timm

    # source/hf_hub_id/url cleared: timm then reads only the file (never the hub, never a URL); its
    # loader drops a classifier of another size, adapts the stem to in_chans and resizes pos_embed.
    overlay = {"file": _local_checkpoint(params), "source": "", "hf_hub_id": None, "url": None}
    try:
        return timm.create_model(params.model, pretrained=True, pretrained_cfg_overlay=overlay,
                                 in_chans=in_chans, num_classes=num_classes, **params.kwargs)
    except TypeError as exc:
        raise UserError(_kwargs_error(params.model, exc)) from None


def timm_model(params: GenericParams, info: DataInfo) -> nn.Module:
    """Any timm model with keyword overrides, behind Normalize; no automatic size adaptation."""
    return normalized(_generic_build(params, info.input_shape[0], info.num_classes), info)


def check_timm_input(params: GenericParams, shape: tuple[int, ...]) -> str | None:
    """Validation of the passthrough: known name, accepted kwargs, and a meta forward at ``shape``."""
    if len(shape) != 3:
        return f"timm models need (C, H, W) images, not inputs of shape {tuple(shape)}"
    try:
        _known_model(params.model)
        if params.pretrained:
            _local_checkpoint(params)
    except UserError as exc:
        return str(exc)
    return _probe(lambda: _create(params.model, shape[0], 2, params.kwargs), tuple(shape),
                  f"timm's {params.model} with kwargs {params.kwargs}")


# --- activations (for activation-swap variants) ---------------------------------------------------


def activation_classes(model: nn.Module) -> dict[str, int]:
    """``module.qualname → count`` of the modules in ``model`` whose class is defined in
    ``torch.nn.modules.activation`` or ``timm.layers.activations`` (MultiheadAttention aside).

    What an activation swap must match, by class: timm's ``timm.layers.activations.GELU``
    (ConvNeXt, CoAtNet) is not an ``nn.GELU``. Not everything listed is a ReLU-like activation:
    Swin's ``nn.Softmax`` is its attention, CoAtNet's ``timm`` ``Sigmoid`` its SE gate and its
    ``Tanh`` the pre-logits of the head.
    """
    import timm.layers.activations as timm_activations

    sources = (nn.modules.activation.__name__, timm_activations.__name__)
    found: dict[str, int] = {}
    for module in model.modules():
        kind = type(module)
        if kind.__module__ in sources and kind is not nn.MultiheadAttention:
            key = f"{kind.__module__}.{kind.__qualname__}"
            found[key] = found.get(key, 0) + 1
    return found


# --- registration ---------------------------------------------------------------------------------


@hookimpl
def harness_register_architectures(registry):
    for family, spec in FAMILIES.items():
        registry.add(family, _named_factory(family), params=spec.params, description=spec.description,
                     test_params=spec.test_params, test_input_shape=spec.test_input_shape,
                     check_input=_named_check(family))
    registry.add("timm", timm_model, params=GenericParams,
                 description="any timm model by name, with kwargs overrides (no size adaptation); "
                             "local weights only",
                 test_params={"model": "vit_tiny_patch16_224",
                              "kwargs": {"img_size": 8, "patch_size": 2, **TINY_VIT}},
                 test_input_shape=(1, 8, 8), check_input=check_timm_input)
