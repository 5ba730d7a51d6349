"""Input-size rules: what each family is given for an input size, and which sizes it refuses.

Pure (no timm import), so ``harness validate`` stays fast: ``adapted_kwargs`` derives
``img_size``, patch size, Swin's window, PVT's spatial-reduction ratios, ConvNeXt's patch stem
and PoolFormer's stem stride from the input shape; ``input_problem`` says why a family cannot
take an input, with a way out, before a shape error deep in a forward would.
"""

from __future__ import annotations

import math
from typing import Any

Size2 = tuple[int, int]


SMALL_INPUT_FACTORIES = ("vit (patch 2 at 8×8, e.g. preset vit-t-patch2-digits), deit, cait, swin, "
                         "pvt-v2, convnext, poolformer, convmixer or mlp-mixer")


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


def _swin_floor_problem(size: Size2, kw: dict[str, Any]) -> str | None:
    """timm 1.0.9 halves a Swin stage map rounding down (later releases round up): a map that
    reaches 0×0 before the last stage breaks the window attention (a modulo by zero)."""
    patch, stages = kw.get("patch_size"), len(kw.get("depths") or (2, 2, 6, 2))
    if not isinstance(patch, int) or min(size) // patch >= 2 ** (stages - 1):
        return None
    need = 2 ** (stages - 1) * patch
    return (f"swin: this timm halves stage maps rounding down (timm 1.0.9; later releases round up), so "
            f"{_size_text(size)} inputs with patch {patch} leave a 0×0 map by stage {stages}; use inputs of "
            f"at least {need}×{need}" + (", or a smaller patch_size" if patch > 1 else ""))


def input_problem(family: str, params: Any, shape: tuple[int, ...],
                  swin_halves_down: bool = False) -> str | None:
    """Why ``family`` with ``params`` cannot take inputs of ``shape``, or None if it can.
    ``swin_halves_down``: the installed timm rounds Swin's stage maps down (see ``builders``)."""
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
    if family == "swin" and swin_halves_down:
        return _swin_floor_problem(size, kw)
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
