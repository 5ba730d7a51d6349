"""The factories' parameter models; every one takes ``kwargs``, timm keyword overrides."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from harness import LocalFile, Params

#: Keyword arguments that come from the dataset or from this plugin, never from ``kwargs``.
RESERVED_KWARGS = ("num_classes", "in_chans", "pretrained", "pretrained_cfg_overlay", "checkpoint_path")


class TimmKwargs(Params):
    """``kwargs``: timm keyword overrides, shared by every factory of this plugin."""

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
        default=None, description="A local weights file (.safetensors or .pth; timm's or a harness "
                                  "checkpoint of this model), loaded strictly: every key, same shapes "
                                  "(a stem of another channel count is adapted); its content is part "
                                  "of the cell hash.")
    new_head: bool = Field(
        default=False, description="Replace a checkpoint classifier of another class count with a new "
                                   "random one (fine-tuning); without it that is an error.")

    @model_validator(mode="after")
    def _weights_are_local(self) -> GenericParams:
        if self.pretrained and not self.checkpoint:
            raise ValueError(
                "pretrained = true needs checkpoint = a local weights file: nothing is downloaded at "
                "run time. Copy it from timm's cache, e.g. ~/.cache/huggingface/hub/"
                "models--timm--<name>/snapshots/*/model.safetensors")
        if self.checkpoint and not self.pretrained:
            raise ValueError("checkpoint is only read with pretrained = true")
        if self.new_head and not self.pretrained:
            raise ValueError("new_head replaces a checkpoint's classifier: it needs pretrained = true")
        return self
