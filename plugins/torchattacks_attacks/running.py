"""Running one torchattacks object under the harness contract: class count, target mode,
channel padding, RNG, and the range/finiteness filter on what comes back."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from harness.toolkits import count_classes, finite_in_range, next_classes, preserved_rng


class PaddedChannels(nn.Module):
    """Feeds the first ``channels`` of a 3-channel input to a model with fewer channels.

    The padding channels get a zero gradient, so a depthwise (per-channel) attack moves only
    the real ones, and the per-example scalings it applies only rescale the update: on the real
    channels it is exactly the attack on the original input.
    """

    def __init__(self, model: nn.Module, channels: int) -> None:
        super().__init__()
        self.model, self.channels = model, channels
        # torchattacks calls .train() afterwards when it found the wrapper in training mode
        self.training = model.training

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x[:, : self.channels])


def set_targets(attack: Any, targeted: str, num_classes: int) -> None:
    """Switch a torchattacks object to a targeted mode without its stdout messages.

    "random" and "least-likely" are the toolkit's own selections (its random draw differs from
    ``harness.toolkits.select_targets``'s, and results must not move); "next" is the shared one.
    """
    if targeted == "random":
        attack.set_mode_targeted_random(quiet=True)
    elif targeted == "least-likely":
        attack.set_mode_targeted_least_likely(kth_min=1, quiet=True)
    elif targeted == "next":
        attack.set_mode_targeted_by_function(lambda x, y: next_classes(y, num_classes), quiet=True)


Builder = Callable[[nn.Module, int], Any]


class ToolkitAttack:
    """``attack(model, x, y)`` around one torchattacks class, built per call by ``build``.

    ``build(model, num_classes)`` returns the configured torchattacks object; the class count
    is measured (one forward) only when the attack or its target mode needs it.
    """

    def __init__(self, name: str, build: Builder, *, targeted: str = "none",
                 needs_classes: bool = False, min_classes: int = 2, reseeds: bool = False,
                 three_channels: bool = False, targets_as_labels: bool = False) -> None:
        self.name, self.build, self.targeted = name, build, targeted
        self.needs_classes, self.min_classes = needs_classes, min_classes
        self.reseeds, self.three_channels = reseeds, three_channels
        self.targets_as_labels = targets_as_labels

    def input_problem(self, input_shape: tuple[int, ...], num_classes: int) -> str | None:
        """Why this attack cannot run on such inputs (asked by ``harness validate`` too)."""
        if num_classes < self.min_classes:
            return (f"{self.name} needs a model with at least {self.min_classes} classes, "
                    f"not {num_classes}")
        if self.three_channels and input_shape[0] > 3:
            return (f"{self.name}: torchattacks hard-codes 3 input channels (its depthwise "
                    f"kernels); inputs with {input_shape[0]} are not supported")
        return None

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        num_classes = 0  # measured (one forward) only when something depends on it
        if self.needs_classes or self.targeted == "next" or self.min_classes > 2:
            num_classes = count_classes(model, x)
        problem = self.input_problem(tuple(x.shape[1:]), num_classes or self.min_classes)
        if problem:
            raise ValueError(problem)
        net, inputs = model, x
        if self.three_channels and x.shape[1] != 3:
            net = PaddedChannels(model, x.shape[1])
            pad = x.new_zeros(x.shape[0], 3 - x.shape[1], *x.shape[2:])
            inputs = torch.cat([x, pad], dim=1)
        # a parameter-free model makes the toolkit print "Failed to set device" at construction
        with contextlib.redirect_stdout(io.StringIO()):
            attack = self.build(net, num_classes)
        if attack.device is None:
            attack.set_device(x.device)
        set_targets(attack, self.targeted, num_classes)
        labels = y
        if self.targets_as_labels and self.targeted != "none":
            labels = attack.get_target_label(inputs, y)
        with preserved_rng(x.device) if self.reseeds else contextlib.nullcontext():
            x_adv = attack(inputs, labels)
        return finite_in_range(x, x_adv[:, : x.shape[1]], self.name)
