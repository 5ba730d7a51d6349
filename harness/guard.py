"""Run any attack under the contract: eval mode, mode restored, gradients cleared, budget checked."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from harness.contracts import Attack
from harness.threat import ThreatModel, check_adversarial_batch


@dataclass
class GuardedAttack:
    """An attack plugin's callable wrapped so no toolkit quirk leaks into results or training.

    Toolkits differ: some leave the model in eval mode, some write parameter gradients. Here the
    model is attacked in eval mode and given back in the mode it came in, parameter gradients
    the attack wrote are dropped, and the output is checked against the threat model.
    """

    attack: Attack
    threat: ThreatModel
    minimum_norm: bool = False

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.run(model, x, y)[0]

    def run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_adv, per-example perturbation norms); raises ContractViolation on a bad batch."""
        modes = [(module, module.training) for module in model.modules()]
        saved_grads = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
        model.eval()
        try:
            with torch.enable_grad():
                x_adv = self.attack(model, x, y)
        finally:
            for module, training in modes:  # per module: a frozen BN stays in eval
                module.training = training
            for p, grad in zip(model.parameters(), saved_grads, strict=True):
                p.grad = grad
        x_adv = x_adv.detach() if isinstance(x_adv, torch.Tensor) else x_adv
        norms = check_adversarial_batch(x, x_adv, self.threat, bounded=not self.minimum_norm)
        return x_adv, norms
