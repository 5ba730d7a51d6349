"""Building timm models: ``timm.create_model``, or timm's class directly where an entrypoint
fixes an argument a family adapts, with errors that say which keyword timm refused.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from harness import UserError

from .params import ConvMixerParams, MixerParams, PoolFormerParams

#: timm entrypoints that fix these architecture arguments (``dict(x=…, **kwargs)`` raises on an
#: override), so their factories build timm's model class directly with the same settings.
MIXER_SIZES = {"s": {"num_blocks": 8, "embed_dim": 512}, "b": {"num_blocks": 12, "embed_dim": 768},
               "l": {"num_blocks": 24, "embed_dim": 1024}}
POOLFORMER_SIZES = {"s12": ([2, 2, 6, 2], [64, 128, 320, 512], 1e-5),
                    "s24": ([4, 4, 12, 4], [64, 128, 320, 512], 1e-5),
                    "s36": ([6, 6, 18, 6], [64, 128, 320, 512], 1e-6),
                    "m36": ([6, 6, 18, 6], [96, 192, 384, 768], 1e-6),
                    "m48": ([8, 8, 24, 8], [96, 192, 384, 768], 1e-6)}


@functools.cache
def swin_halves_down() -> bool:
    """Whether this timm rounds a Swin stage's merged map down (1.0.9: 1×1 → 0×0) rather than up
    (1.0.31: 1×1 → 1×1); read off a stage, so it holds whichever release made the change."""
    from timm.models.swin_transformer import SwinTransformerStage

    stage = SwinTransformerStage(dim=1, out_dim=1, input_resolution=(1, 1), depth=0, num_heads=1)
    return tuple(stage.output_resolution) == (0, 0)


def timm_name(family: str, params: Any) -> str:
    size = getattr(params, "size", "")
    return {
        "vit": f"vit_{size}_patch16_224", "deit": f"deit_{size}_patch16_224", "cait": f"cait_{size}_224",
        "mlp-mixer": f"mixer_{size}16_224", "swin": f"swin_{size}_patch4_window7_224",
        "pvt-v2": f"pvt_v2_{size}", "coatnet": f"coatnet_{size.replace('-', '_')}_224",
        "levit": f"levit_{size}", "convnext": f"convnext_{size}", "poolformer": f"poolformer_{size}",
        "convmixer": "ConvMixer", "timm": getattr(params, "model", ""),
    }[family]


def create(name: str, in_chans: int, num_classes: int, kwargs: dict[str, Any]) -> nn.Module:
    """``timm.create_model`` with a UserError that says which keyword timm refused and why."""
    import timm

    try:
        return timm.create_model(name, pretrained=False, in_chans=in_chans, num_classes=num_classes,
                                 **kwargs)
    except TypeError as exc:
        raise UserError(kwargs_error(name, exc)) from None


def kwargs_error(name: str, exc: Exception) -> str:
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
    return create(timm_name(family, params), in_chans, num_classes, kw)


def build_checked(family: str, params: Any, in_chans: int, num_classes: int,
                  kw: dict[str, Any]) -> nn.Module:
    try:
        return _build(family, params, in_chans, num_classes, kw)
    except TypeError as exc:  # the classes built directly reject unknown kwargs with a TypeError
        raise UserError(kwargs_error(timm_name(family, params), exc)) from None


class _SchedulesOnCpu(TorchFunctionMode):
    """``torch.linspace`` on the CPU: timm 1.0.9 reads its drop-path schedules back with ``.item()``
    and ``.tolist()`` (``[x.item() for x in torch.linspace(0, rate, depth)]``), which a meta tensor
    cannot do; timm 1.0.31 computes them in Python. Nothing else of a model is built from them."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func is torch.linspace and kwargs.get("device") is None:
            kwargs["device"] = "cpu"
        return func(*args, **kwargs)


@contextmanager
def on_meta() -> Iterator[None]:
    """Build parameters on the meta device (no memory, no init), with any timm 1.0 release."""
    with torch.device("meta"), _SchedulesOnCpu():
        yield


def probe(build: Callable[[], nn.Module], shape: tuple[int, ...], what: str) -> str | None:
    """Build on the meta device and run a shape-only forward: the error a real run would hit."""
    try:
        with torch.random.fork_rng(devices=[]), on_meta():  # validation leaves the RNG alone
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
