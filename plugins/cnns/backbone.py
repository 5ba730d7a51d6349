"""What every zoo network shares: a locatable final feature map, the strides field, an init.

The final feature map before global average pooling is exposed on every zoo backbone:

* ``backbone.feature_map_module`` (str) names the submodule whose *output* is that map; a
  metrics plugin finds it on a built model with
  ``next(m for m in model.modules() if isinstance(getattr(m, "feature_map_module", None), str))``
  and reads its size with a forward hook on ``m.get_submodule(m.feature_map_module)``, which
  also accounts for variants (e.g. input upsampling) in front of the backbone;
* ``backbone.feature_map_shape((C, H, W)) -> (C', H', W')`` computes it for a given backbone
  input size on the meta device: no memory and no arithmetic, even for WRN-34-20 (0.1–0.5 s,
  plus about 3 s the first time a process loads torch's meta kernels).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import torch
from pydantic import Field
from torch import nn

from harness.toolkits import kept_modes


class Backbone(nn.Module):
    """A classifier on normalized inputs whose final pre-pooling feature map can be located."""

    #: Name of the submodule whose output is the last feature map before global pooling.
    feature_map_module: str = ""

    def feature_map_shape(self, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
        """(C, H, W) of the final feature map for backbone inputs of ``input_shape``.

        Runs the network on the meta device (shapes only, no memory even for WRN-34-20) and
        raises the same RuntimeError a real forward would when the input is too small.
        """
        from torch.func import functional_call

        state = {name: torch.empty_like(t, device="meta")
                 for name, t in itertools.chain(self.named_parameters(), self.named_buffers())}
        seen: list[tuple[int, int, int]] = []
        target = self.get_submodule(self.feature_map_module)
        handle = target.register_forward_hook(lambda _m, _i, out: seen.append(tuple(out.shape[1:])))
        try:
            with kept_modes(self), torch.no_grad():
                self.eval()  # eval-mode BatchNorm is twice as fast on meta and takes a batch of one
                functional_call(self, state, (torch.empty(1, *input_shape, device="meta"),))
        finally:
            handle.remove()
        return seen[-1]


#: ``build(params, in_channels, num_classes)``: what each family module provides to the zoo.
Builder = Callable[[Any, int, int], Backbone]


def strides_field(stages: int, default: str, what: str) -> Any:
    """A ``strides`` string, one digit per downsampling point, so a suite can move them."""
    return Field(default=default, pattern=rf"^[12]{{{stages}}}$",
                 description=f"{what}: one digit (1 or 2) each, e.g. {default!r}.")


def init_like_torchvision(model: nn.Module) -> None:
    """Kaiming-normal (fan_out) convs, unit BN, N(0, 0.01) linear layers: torchvision's VGG/MobileNet."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
