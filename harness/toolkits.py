"""Chores every attack plugin that wraps a toolkit repeats, done once and the same way.

Toolkits reseed the global RNG, return NaN for examples they give up on, and need the class
count or the model's device before they are built; these helpers keep such quirks out of the
results without each plugin writing its own copy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from harness.flags import raise_flag
from harness.seeding import preserved_rng

__all__ = ["count_classes", "finite_in_range", "frozen_parameters", "kept_modes", "model_device",
           "model_dtype", "preserved_rng"]


def model_device(model: nn.Module, fallback: torch.device) -> torch.device:
    """Where the model's parameters (or buffers) live; ``fallback`` for a stateless model."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return fallback


def model_dtype(model: nn.Module, fallback: torch.dtype) -> torch.dtype:
    """The model's floating-point dtype; ``fallback`` when it has no floating state."""
    for tensor in (*model.parameters(), *model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return fallback


@contextlib.contextmanager
def kept_modes(model: nn.Module) -> Iterator[None]:
    """Give every module back the train/eval mode it had, whatever the block sets (per module:
    a BatchNorm frozen in eval inside a training model stays in eval)."""
    modes = [(module, module.training) for module in model.modules()]
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def count_classes(model: nn.Module, x: torch.Tensor) -> int:
    """The number of logits, from one forward of ``x[:1]`` in eval mode (modes restored).

    Eval mode so BatchNorm statistics do not move: this is a side forward, not training.
    """
    with kept_modes(model), torch.no_grad():
        sample = x[:1].to(device=model_device(model, x.device), dtype=model_dtype(model, x.dtype))
        return int(model.eval()(sample).shape[1])


@contextlib.contextmanager
def frozen_parameters(model: nn.Module) -> Iterator[None]:
    """Parameters need no gradient while crafting: a toolkit calling ``.backward()`` (FAB does)
    then computes input gradients only and writes no parameter gradients."""
    params = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, requires_grad in params:
            p.requires_grad_(requires_grad)


def finite_in_range(x: torch.Tensor, x_adv: torch.Tensor, name: str) -> torch.Tensor:
    """``x_adv`` on x's device and dtype, non-finite examples back to x (flagged), clamped to [0,1].

    Clamping to the input range never increases any coordinate's distance to x (x is in
    [0,1]), so it cannot turn an over-budget output into an in-budget one: the engine's budget
    check still sees every violation.
    """
    x_adv = x_adv.detach().to(device=x.device, dtype=x.dtype)
    broken = ~torch.isfinite(x_adv).flatten(1).all(dim=1)
    if bool(broken.any()):
        raise_flag("non-finite-output", f"{name}: {int(broken.sum())} example(s) came back "
                   "NaN/inf and were returned unperturbed (counted as not broken)")
        x_adv = torch.where(broken.view(-1, *[1] * (x.dim() - 1)), x, x_adv)
    return x_adv.clamp(0.0, 1.0)
