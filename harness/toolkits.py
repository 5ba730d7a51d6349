"""Chores every attack plugin that wraps a toolkit repeats, done once and the same way.

Toolkits reseed the global RNG, return NaN for examples they give up on, and need the class
count or the model's device before they are built; these helpers keep such quirks out of the
results without each plugin writing its own copy. The parameters every wrapper offers (target
modes, iterations and step size), the norm spellings toolkits expect and the engine's budget
tolerance live here too, so two wrappers of the same attack mean the same thing by them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from harness.contracts import Params
from harness.flags import raise_flag
from harness.seeding import preserved_rng

# The engine's budget check, re-exported: a wrapper that repairs a toolkit's float rounding (ART's
# l1/l2 projection) must agree with the engine on the norms and on what "within eps" means.
from harness.threat import ABS_TOL, NORM_ORDER, REL_TOL, StepSize, perturbation_norms, within_budget

__all__ = ["ABS_TOL", "NORM_NAMES", "NORM_ORDER", "REL_TOL", "TARGET_HELP", "IterativeParams",
           "Target", "TargetedParams", "count_classes", "finite_in_range",
           "frozen_parameters", "kept_modes", "model_device", "model_dtype", "next_classes",
           "perturbation_norms", "preserved_rng", "select_targets", "within_budget"]

#: How torchattacks and AutoAttack spell each norm (ART takes the p of ``NORM_ORDER``).
NORM_NAMES: dict[str, str] = {"linf": "Linf", "l2": "L2", "l1": "L1"}

#: The target modes of every targeted wrapper, so a suite means one thing by "next" everywhere.
Target = Literal["none", "random", "least-likely", "next"]
TARGET_HELP = ('"none": untargeted. "random": a random wrong class; "least-likely": the class the '
               'model ranks last on the clean input; "next": (y + 1) mod classes. Success is still '
               'scored untargeted (any wrong class).')


class TargetedParams(Params):
    """The ``targeted`` mode (see ``TARGET_HELP``), spelt the same by every toolkit wrapper."""

    targeted: Target = Field(default="none", description=TARGET_HELP)


class IterativeParams(Params):
    """Iterations and step size of an iterative attack, with one default step for all toolkits
    (2.5*eps/steps, Madry et al.'s), so PGD-10 means the same step through any of them."""

    steps: int = Field(default=10, ge=1, description="Iterations.")
    step_size: StepSize | None = Field(
        default=None, description='Absolute ("2/255") or relative ("eps/8"); default 2.5*eps/steps.')

    def alpha(self, eps: float) -> float:
        """The absolute step at budget ``eps``."""
        return self.step_size.absolute(eps) if self.step_size else 2.5 * eps / self.steps


def next_classes(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The "next" targets, (y + 1) mod classes: one definition for every wrapper."""
    return (y + 1) % num_classes


def select_targets(model: nn.Module, x: torch.Tensor, y: torch.Tensor, mode: str,
                   num_classes: int) -> torch.Tensor:
    """Targets for ``mode`` ("random", "least-likely" or "next"), for toolkits that take them as
    labels: "random" is uniform over the other classes, drawn from the (seeded) torch CPU
    stream; "least-likely" is the model's last-ranked class on the clean input."""
    if mode == "next":
        return next_classes(y, num_classes)
    if mode == "random":
        shift = torch.randint(1, num_classes, y.shape, device="cpu").to(y.device)
        return (y + shift) % num_classes
    with torch.no_grad():
        return model(x).argmin(dim=1)


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
