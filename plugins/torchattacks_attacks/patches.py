"""torchattacks classes with a fault fixed: CW (its margin and its atanh start) and PGD/PGD-L2
with the Carlini-Wagner margin loss in place of cross-entropy (CW-inf).

Built on first use (``functools.cache``) so loading the plugin does not import torchattacks.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
from torch import nn


def margin_objective(logits: torch.Tensor, labels: torch.Tensor, kappa: float, targeted: bool
                     ) -> torch.Tensor:
    """Carlini-Wagner margin to *ascend*, summed over the batch.

    Untargeted: -max(z_y - max_{j!=y} z_j, -kappa); towards target t: -max(max_{j!=t} z_j - z_t,
    -kappa). With kappa = 0 it is RobustWRN's CW-inf loss, -relu(z_y - z_other).
    """
    own = logits.gather(1, labels[:, None]).squeeze(1)
    mask = nn.functional.one_hot(labels, logits.shape[1]).bool()
    other = logits.masked_fill(mask, -math.inf).amax(dim=1)
    gap = other - own if targeted else own - other
    return -gap.clamp(min=-kappa).sum()


@functools.cache
def margin_pgd_classes() -> dict[str, type]:
    """torchattacks.PGD and PGDL2 (by class name) with the margin loss in place of cross-entropy.

    Only the loss differs: the start, step and projection lines are the toolkit's own.
    """
    import torchattacks

    class _MarginLoop:
        def __init__(self, model: nn.Module, kappa: float = 0.0, **kwargs: Any) -> None:
            super().__init__(model, **kwargs)
            self.kappa = kappa

        def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            images = images.clone().detach().to(self.device)
            labels = labels.clone().detach().to(self.device)
            if self.targeted:
                labels = self.get_target_label(images, labels)
            adv_images = self._start(images)
            for _ in range(self.steps):
                adv_images.requires_grad = True
                cost = margin_objective(self.get_logits(adv_images), labels, self.kappa,
                                        self.targeted)
                grad = torch.autograd.grad(cost, adv_images, retain_graph=False,
                                           create_graph=False)[0]
                adv_images = self._step(images, adv_images.detach(), grad)
            return adv_images

    class MarginPGD(_MarginLoop, torchattacks.PGD):
        def _start(self, images: torch.Tensor) -> torch.Tensor:
            adv_images = images.clone().detach()
            if self.random_start:
                adv_images = adv_images + torch.empty_like(adv_images).uniform_(-self.eps, self.eps)
                adv_images = torch.clamp(adv_images, min=0, max=1).detach()
            return adv_images

        def _step(self, images: torch.Tensor, adv_images: torch.Tensor, grad: torch.Tensor
                  ) -> torch.Tensor:
            adv_images = adv_images + self.alpha * grad.sign()
            delta = torch.clamp(adv_images - images, min=-self.eps, max=self.eps)
            return torch.clamp(images + delta, min=0, max=1).detach()

    class MarginPGDL2(_MarginLoop, torchattacks.PGDL2):
        def _start(self, images: torch.Tensor) -> torch.Tensor:
            adv_images = images.clone().detach()
            if self.random_start:
                delta = torch.empty_like(adv_images).normal_()
                n = delta.view(adv_images.size(0), -1).norm(p=2, dim=1).view(-1, 1, 1, 1)
                r = torch.zeros_like(n).uniform_(0, 1)
                delta *= r / n * self.eps
                adv_images = torch.clamp(adv_images + delta, min=0, max=1).detach()
            return adv_images

        def _step(self, images: torch.Tensor, adv_images: torch.Tensor, grad: torch.Tensor
                  ) -> torch.Tensor:
            batch = len(images)
            grad_norms = torch.norm(grad.view(batch, -1), p=2, dim=1) + self.eps_for_division
            adv_images = adv_images + self.alpha * grad / grad_norms.view(batch, 1, 1, 1)
            delta = adv_images - images
            factor = self.eps / torch.norm(delta.view(batch, -1), p=2, dim=1)
            factor = torch.min(factor, torch.ones_like(factor))
            return torch.clamp(images + delta * factor.view(-1, 1, 1, 1), min=0, max=1).detach()

    return {"PGD": MarginPGD, "PGDL2": MarginPGDL2}


@functools.cache
def fixed_cw_class() -> type:
    """torchattacks.CW with its margin right for negative logits and its start able to move
    saturated pixels."""
    import torchattacks

    class FixedCW(torchattacks.CW):
        """torchattacks.CW with two fixes; the optimisation is otherwise the toolkit's."""

        def f(self, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            # upstream takes max((1-onehot)*z) and max(onehot*z): with negative logits the zeros
            # win and the margin is wrong (torchattacks PR #168). Mask with -inf instead.
            mask = nn.functional.one_hot(labels, outputs.shape[1]).bool()
            real = outputs.gather(1, labels[:, None]).squeeze(1)
            other = outputs.masked_fill(mask, -math.inf).amax(dim=1)
            gap = other - real if self.targeted else real - other
            return torch.clamp(gap, min=-self.kappa)

        def inverse_tanh_space(self, x: torch.Tensor) -> torch.Tensor:
            # pixels at exactly 0 or 1 map to atanh(±1) = ±inf, where tanh has no gradient: they
            # could never move. Carlini & Wagner's code scales by 0.999999 for this reason.
            return self.atanh(torch.clamp(x * 2 - 1, min=-1, max=1) * 0.999999)

    return FixedCW
