"""Run any attack under the contract: eval mode, mode restored, gradients cleared, budget checked."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from harness.contracts import Attack
from harness.threat import ThreatModel, check_adversarial_batch
from harness.toolkits import frozen_parameters, kept_modes


@dataclass
class GuardedAttack:
    """An attack plugin's callable wrapped so no toolkit quirk leaks into results or training.

    Toolkits differ: some leave the model in eval mode, some write parameter gradients. Here the
    model is attacked in eval mode (``train_mode=True`` keeps the caller's modes, for training
    recipes that craft with BatchNorm in train mode) and given back in the modes it came in;
    parameters are frozen while crafting, so only input gradients are computed, and any
    parameter gradient is restored; the output is checked against the threat model.
    """

    attack: Attack
    threat: ThreatModel
    minimum_norm: bool = False
    train_mode: bool = False

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.run(model, x, y)[0]

    def run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_adv, per-example perturbation norms); raises ContractViolation on a bad batch."""
        params = list(model.parameters())
        grads = [p.grad for p in params]  # the caller's, e.g. mid-step in training
        for p in params:
            p.grad = None
        try:
            with kept_modes(model), torch.enable_grad(), frozen_parameters(model):
                if not self.train_mode:
                    model.eval()
                x_adv = self.attack(model, x, y)
        finally:
            for p, grad in zip(params, grads, strict=True):
                p.grad = grad
        x_adv = x_adv.detach() if isinstance(x_adv, torch.Tensor) else x_adv
        norms = check_adversarial_batch(x, x_adv, self.threat, bounded=not self.minimum_norm)
        return x_adv, norms

