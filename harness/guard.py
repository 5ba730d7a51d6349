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
        snapshot = Snapshot(self._watched(model))
        given = x.clone()
        try:
            with kept_modes(model), torch.enable_grad(), frozen_parameters(model):
                if not self.train_mode:
                    model.eval()
                x_adv = self.attack(model, given, y)
        finally:
            for p, grad in zip(params, grads, strict=True):
                p.grad = grad
            snapshot.restore_changed()
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


class Snapshot:
    """A copy of the model's tensors to find and undo what an attack changed, bit for bit.

    The tensors of each dtype and device are copied as one flat buffer (one kernel, not one per
    tensor) and compared as one, by their bits (a NaN that stayed NaN is unchanged): on a GPU
    the check is a handful of launches and one host read, whatever the model's size.
    """

    def __init__(self, watched: list[tuple[str, torch.Tensor]]) -> None:
        groups: dict[tuple[torch.dtype, torch.device], list[tuple[str, torch.Tensor]]] = {}
        for name, tensor in watched:
            groups.setdefault((tensor.dtype, tensor.device), []).append((name, tensor))
        self.groups = [(group, _flat(group)) for group in groups.values()]

    def restore_changed(self) -> None:
        """Put back every tensor the attack changed, then say which: the model is whole again."""
        changed: list[str] = []
        for group, saved in self.groups:
            if torch.equal(_bits(_flat(group)), _bits(saved)):
                continue
            start = 0
            with torch.no_grad():
                for name, tensor in group:
                    before = saved[start:start + tensor.numel()]
                    start += tensor.numel()
                    if not torch.equal(_bits(_memory_order(tensor)), _bits(before)):
                        _put_back(tensor, before)
                        changed.append(name)
        if changed:
            names = ", ".join(changed[:5]) + (" …" if len(changed) > 5 else "")
            raise ContractViolation(f"the attack changed the model ({names}); restored, but its "
                                    "results are void (it trained the model or ran it in train "
                                    "mode)")


def _dense(tensor: torch.Tensor) -> bool:
    return tensor.is_contiguous() or (tensor.dim() == 4 and
                                      tensor.is_contiguous(memory_format=torch.channels_last))


def _memory_order(tensor: torch.Tensor) -> torch.Tensor:
    """A 1-d view of the tensor's elements as they lie in memory (channels_last weights
    included), so flattening copies nothing; any other strided tensor is copied in row-major
    order."""
    tensor = tensor.detach()
    if _dense(tensor):
        return tensor.as_strided((tensor.numel(),), (1,), tensor.storage_offset())
    return tensor.reshape(-1)


def _put_back(tensor: torch.Tensor, saved: torch.Tensor) -> None:
    if _dense(tensor):
        _memory_order(tensor).copy_(saved)
    else:
        tensor.detach().copy_(saved.view(tensor.shape))


def _flat(group: list[tuple[str, torch.Tensor]]) -> torch.Tensor:
    return torch.cat([_memory_order(tensor) for _, tensor in group])


def _bits(tensor: torch.Tensor) -> torch.Tensor:
    """Floats as same-width integers: equal exactly when bit-identical (NaN included)."""
    if not tensor.is_floating_point():
        return tensor
    width = {8: torch.int64, 4: torch.int32, 2: torch.int16, 1: torch.int8}
    return tensor.view(width[tensor.element_size()])
