"""Input upsampling (``upsample``): larger feature maps without touching the architecture.

The larger-feature-map study (Xu et al., arXiv 2202.12435, rcm's ``ADArch``): normalise →
``F.interpolate(scale, mode)`` → backbone, inside the model, so attacks still work on the
original resolution. On a ``harness.normalized`` model (a ``Normalize`` at ``model.normalize``
followed by ``model.backbone``) the interpolation is fused into that ``normalize`` module (same
state_dict keys); any other model is wrapped whole, interpolating its [0,1] input before it. For
a model that starts with a per-channel affine normalization the two orders are the same function
(interpolation weights sum to one), up to float rounding. A ``Linear`` layer sized for the
original maps (a Flatten → Linear head such as the small CNN's) is re-sized for the larger maps
with PyTorch's default initialisation (the model is untrained when variants run); a model that
still cannot take the larger input (a ViT with a fixed ``img_size``) is an error naming the
reason.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from harness import DataInfo, Normalize, Params, UserError
from harness.toolkits import kept_modes

Mode = Literal["nearest", "bilinear", "bicubic"]


class UpsampleParams(Params):
    scale: float = Field(default=2.0, gt=0, le=16,
                         description="Spatial scale factor (2 = the larger-feature-map study).")
    mode: Mode = Field(default="nearest", description="Interpolation (rcm's default: nearest).")


def _interpolate(x: torch.Tensor, steps: list[tuple[float, str]]) -> torch.Tensor:
    for scale, mode in steps:
        corners = {} if mode == "nearest" else {"align_corners": False}
        x = F.interpolate(x, scale_factor=scale, mode=mode, **corners)
    return x


class NormalizeUpsample(Normalize):
    """``Normalize`` then interpolate: the same buffers and keys as the ``Normalize`` it replaces."""

    def __init__(self, normalize: Normalize, steps: list[tuple[float, str]]) -> None:
        super().__init__(normalize.mean.flatten().tolist(), normalize.std.flatten().tolist())
        self.load_state_dict(normalize.state_dict())  # exact values, not a float round-trip
        self.steps = list(steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _interpolate(super().forward(x), self.steps)

    def extra_repr(self) -> str:
        return ", ".join(f"×{s:g} {m}" for s, m in self.steps)


class InputUpsample(nn.Module):
    """Interpolate the [0,1] input, then the wrapped model (for models without ``normalize``)."""

    def __init__(self, model: nn.Module, steps: list[tuple[float, str]]) -> None:
        super().__init__()
        self.model = model
        self.steps = list(steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(_interpolate(x, self.steps))

    def extra_repr(self) -> str:
        return ", ".join(f"×{s:g} {m}" for s, m in self.steps)


def upsample(params: UpsampleParams, model: nn.Module, info: DataInfo) -> nn.Module:
    """Normalise → interpolate → backbone; the model still takes the dataset's input size."""
    step = (params.scale, params.mode)
    normalize = getattr(model, "normalize", None)
    if isinstance(normalize, Normalize) and isinstance(getattr(model, "backbone", None), nn.Module):
        previous = normalize.steps if isinstance(normalize, NormalizeUpsample) else []
        model.normalize = NormalizeUpsample(normalize, [*previous, step])
    elif isinstance(model, InputUpsample):
        model.steps.append(step)
    else:
        model = InputUpsample(model, [step])
    _fit_linear_layers(model, info, params)
    return model


def _fit_linear_layers(model: nn.Module, info: DataInfo, params: UpsampleParams) -> None:
    """Re-size ``nn.Linear`` layers sized for the original maps (a Flatten → Linear head).

    A head built for the dataset's input size (the small CNN's, materialised by a dummy
    forward) cannot take the larger maps. The model is untrained when variants run, so such a
    layer is given the new input width and PyTorch's default initialisation, found by one
    forward on a zero input; anything else that cannot take the size is a clear error.
    """
    resized: list[nn.Linear] = []

    def fit(module: nn.Module, args: tuple[Any, ...]) -> None:
        width = args[0].shape[-1]
        if isinstance(module, nn.Linear) and width != module.in_features:
            weight = module.weight
            module.in_features = width
            module.weight = nn.Parameter(weight.new_empty(module.out_features, width))
            module.reset_parameters()
            resized.append(module)

    handles = [m.register_forward_pre_hook(fit) for m in model.modules() if type(m) is nn.Linear]
    try:
        with kept_modes(model), torch.no_grad():
            model.eval()(torch.zeros(1, *info.input_shape))
    except (RuntimeError, ValueError, AssertionError) as exc:
        raise UserError(f"upsample: {type(model).__name__} cannot run on its inputs upsampled "
                        f"×{params.scale:g} ({type(exc).__name__}: {exc}); a model built for a fixed "
                        "input size (a ViT's img_size) must be built for the upsampled size") from None
    finally:
        for handle in handles:
            handle.remove()
