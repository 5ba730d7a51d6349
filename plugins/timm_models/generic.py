"""``timm``, the generic passthrough: any timm model name plus keyword overrides, local weights only
(loaded strictly by ``checkpoints``).

No size adaptation: validation builds the model on the meta device and runs a shape-only forward.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from torch import nn

from harness import DataInfo, UserError, normalized

from .builders import create, probe
from .checkpoints import load_checkpoint
from .params import GenericParams


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
    return create(params.model, in_chans, num_classes, params.kwargs)


def timm_model(params: GenericParams, info: DataInfo) -> nn.Module:
    """Any timm model with keyword overrides, behind Normalize; no automatic size adaptation.
    With ``pretrained``, the local checkpoint is loaded strictly (``checkpoints``)."""
    model = normalized(_generic_build(params, info.input_shape[0], info.num_classes), info)
    if params.pretrained:
        what = f"timm's {params.model} with kwargs {params.kwargs}"
        load_checkpoint(model, Path(_local_checkpoint(params)), what, params.new_head)
    return model


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
    return probe(lambda: create(params.model, shape[0], 2, params.kwargs), tuple(shape),
                 f"timm's {params.model} with kwargs {params.kwargs}")
