"""Run any attack under the contract: its own copy of the batch, eval mode, frozen parameters,
the model verified unchanged afterwards, the output checked against the threat model."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from harness.errors import ContractViolation
from harness.hookspecs import Attack
from harness.threat import ThreatModel, check_adversarial_batch
from harness.toolkits import frozen_parameters, kept_modes


@dataclass
class GuardedAttack:
    """An attack plugin's callable wrapped so no toolkit quirk or plugin bug leaks into results,
    later cells or training.

    - The attack gets a copy of the batch: the budget is checked against the engine's own,
      and an attack that wrote into its input (beyond the budget, say) fails the batch.
    - The model is attacked in eval mode (``train_mode=True`` keeps the caller's modes, for
      training recipes that craft with BatchNorm in train mode) and given back in the modes it
      came in; parameters are frozen while crafting, so only input gradients are computed, and
      the caller's parameter gradients are restored.
    - Parameters, and buffers unless ``train_mode`` (where BatchNorm statistics move by
      design), must be bit-identical afterwards: a change is undone from a snapshot, then
      reported, so no later cell sees the damaged model.
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
        watched = self._watched(model)
        snapshot = [t.detach().clone() for _, t in watched]
        given = x.clone()
        try:
            with kept_modes(model), torch.enable_grad(), frozen_parameters(model):
                if not self.train_mode:
                    model.eval()
                x_adv = self.attack(model, given, y)
        finally:
            for p, grad in zip(params, grads, strict=True):
                p.grad = grad
            _restore_changed(watched, snapshot)
        if not torch.equal(given, x):
            raise ContractViolation("the attack wrote into its input batch (in place); it must "
                                    "return a new tensor and leave x as it was")
        x_adv = x_adv.detach() if isinstance(x_adv, torch.Tensor) else x_adv
        norms = check_adversarial_batch(x, x_adv, self.threat, bounded=not self.minimum_norm)
        return x_adv, norms

    def _watched(self, model: nn.Module) -> list[tuple[str, torch.Tensor]]:
        watched = list(model.named_parameters())
        if not self.train_mode:
            watched += list(model.named_buffers())
        return watched


def _restore_changed(watched: list[tuple[str, torch.Tensor]], snapshot: list[torch.Tensor]
                     ) -> None:
    """Put back every tensor the attack changed, then say which: the model is whole again.

    One host read for the whole model (not one per tensor: each would be a GPU sync).
    """
    if not watched:
        return
    device = watched[0][1].device
    differs = torch.stack([_differs(tensor, saved).to(device)
                           for (_, tensor), saved in zip(watched, snapshot, strict=True)])
    if not bool(differs.any()):
        return
    changed = [(name, tensor, saved) for ((name, tensor), saved), moved in
               zip(zip(watched, snapshot, strict=True), differs.tolist(), strict=True) if moved]
    with torch.no_grad():
        for _, tensor, saved in changed:
            tensor.copy_(saved)
    names = ", ".join(name for name, _, _ in changed[:5]) + (" …" if len(changed) > 5 else "")
    raise ContractViolation(f"the attack changed the model ({names}); restored, but its "
                            "results are void (it trained the model or ran it in train mode)")


def _differs(tensor: torch.Tensor, saved: torch.Tensor) -> torch.Tensor:
    """Whether any element changed (a NaN that stayed NaN is unchanged)."""
    moved = tensor != saved
    if tensor.is_floating_point():
        moved &= ~(tensor.isnan() & saved.isnan())
    return moved.any()
