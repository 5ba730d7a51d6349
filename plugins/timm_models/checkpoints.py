"""Local checkpoints into timm models, strictly: every key the model has, nothing else, same shapes.

timm's own pretrained loader decides whether to keep a classifier by comparing the dataset's class
count with its *config's* (1000 for ImageNet), not with the checkpoint's: a 10-class checkpoint
for a 10-class dataset lost its head to a random one, and whatever else did not fit was a logged
warning. Here the checkpoint decides: a head with the dataset's class count is kept; another
count is an error unless ``new_head = true`` asks for a fresh classifier (fine-tuning); a stem
with another channel count is adapted as timm does (summed to 1 channel, tiled to more); any
other missing or unexpected key or shape is one line naming them. A harness checkpoint (the
whole normalized model: ``normalize.*`` and ``backbone.*``) is recognised and loaded into the
whole model, its normalization included, so it computes exactly what was trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness import UserError

HARNESS_KEYS = ("normalize.mean", "normalize.std")
#: How many key names an error lists before counting the rest.
SHOWN = 4


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """timm's reader (.safetensors, or .pth/.pt with a ``state_dict``/``model`` entry and
    ``module.`` prefixes removed), never unpickling code."""
    from timm.models import load_state_dict

    try:
        state = load_state_dict(str(path), weights_only=True)
    except Exception as exc:  # a damaged, foreign or pickled-code file: say so in one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise UserError(f"checkpoint {path} cannot be read as a state dict ({type(exc).__name__}: "
                        f"{first})") from None
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def is_harness_checkpoint(state: dict[str, torch.Tensor]) -> bool:
    return all(k in state for k in HARNESS_KEYS) and any(k.startswith("backbone.") for k in state)


def load_checkpoint(model: nn.Module, path: Path, what: str, new_head: bool) -> None:
    """Load ``path`` into ``model`` (a ``harness.normalized`` timm backbone), strictly."""
    state = read_state_dict(path)
    if is_harness_checkpoint(state):
        prefix, target = "backbone.", model
    else:
        prefix, target = "", model.backbone
    backbone = model.backbone
    cfg: dict[str, Any] = dict(getattr(backbone, "pretrained_cfg", None) or {})
    state = _adapt_stem(state, prefix, cfg, _in_chans(backbone, cfg))
    state, dropped = _fit_head(state, prefix, cfg, backbone, path, new_head)
    strict_load(target, state, path, what, allowed_missing=dropped)


def strict_load(module: nn.Module, state: dict[str, torch.Tensor], path: Path, what: str,
                allowed_missing: tuple[str, ...] = ()) -> None:
    expected = module.state_dict()
    missing = [k for k in expected if k not in state and k not in allowed_missing]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in state and state[k].shape != v.shape]
    problems = [f"{label} {_listed(keys)}" for label, keys in (
        ("missing keys", missing), ("unexpected keys", unexpected),
        ("shapes (checkpoint vs model)", shapes)) if keys]
    if problems:
        raise UserError(f"checkpoint {path} does not fit {what}: {'; '.join(problems)}. Build the "
                        "model it was saved from (the same timm model name and kwargs)")
    module.load_state_dict(state, strict=False)  # strict above; only a dropped head stays new


def _listed(keys: list[str]) -> str:
    more = f", … ({len(keys)} in all)" if len(keys) > SHOWN else ""
    return ", ".join(keys[:SHOWN]) + more


def _names(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _in_chans(backbone: nn.Module, cfg: dict[str, Any]) -> int:
    for name in _names(cfg.get("first_conv")):
        weight = backbone.state_dict().get(f"{name}.weight")
        if weight is not None and weight.dim() == 4:
            return int(weight.shape[1])
    return 0


def _adapt_stem(state: dict[str, torch.Tensor], prefix: str, cfg: dict[str, Any],
                in_chans: int) -> dict[str, torch.Tensor]:
    """An RGB stem for gray images (or the reverse), as timm adapts it (``adapt_input_conv``)."""
    from timm.models import adapt_input_conv

    out = dict(state)
    for name in _names(cfg.get("first_conv")):
        key = f"{prefix}{name}.weight"
        weight = out.get(key)
        if in_chans and weight is not None and weight.dim() == 4 and weight.shape[1] != in_chans:
            out[key] = adapt_input_conv(in_chans, weight)
    return out


def _fit_head(state: dict[str, torch.Tensor], prefix: str, cfg: dict[str, Any],
              backbone: nn.Module, path: Path, new_head: bool
              ) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """Keep a classifier of the model's class count; drop another only when asked."""
    out, dropped = dict(state), []
    model_keys = backbone.state_dict()
    for name in _names(cfg.get("classifier")):
        weight, ours = out.get(f"{prefix}{name}.weight"), model_keys.get(f"{name}.weight")
        if weight is None or ours is None or weight.shape[0] == ours.shape[0]:
            continue
        if not new_head:
            raise UserError(f"checkpoint {path}: its classifier {name} has {weight.shape[0]} classes "
                            f"and the dataset {ours.shape[0]}: set new_head = true to train a new "
                            "classifier for this dataset (fine-tuning), or use a checkpoint with "
                            f"{ours.shape[0]} classes")
        for suffix in ("weight", "bias"):
            if out.pop(f"{prefix}{name}.{suffix}", None) is not None:
                dropped.append(f"{prefix}{name}.{suffix}")
    return out, tuple(dropped)
