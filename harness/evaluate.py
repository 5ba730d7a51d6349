"""Evaluation: one clean pass per model, then each attack on the clean-correct examples.

Outcomes are per example, so the worst case over any subset of attacks can be computed later.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from harness.guard import GuardedAttack
from harness.threat import within_budget


@dataclass
class AttackOutcome:
    """Per-example results of one attack on the evaluation examples (in order)."""

    robust: torch.Tensor  # bool: still classified correctly within the budget
    norms: torch.Tensor  # float: perturbation norm (0 where the example was not attacked)
    seconds: float

    @property
    def accuracy(self) -> float:
        return float(self.robust.float().mean()) if len(self.robust) else 0.0


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


def clean_correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int
                  ) -> torch.Tensor:
    return predict(model, x, batch_size) == y


def run_attack(model: nn.Module, attack: GuardedAttack, x: torch.Tensor, y: torch.Tensor,
               correct: torch.Tensor, batch_size: int, seed: int) -> AttackOutcome:
    """Attack every clean-correct example; misclassified ones count as broken already.

    A minimum-norm attack's example is broken only if misclassified *and* within eps.
    Raises ContractViolation if any batch leaves the threat model.
    """
    started = time.perf_counter()
    torch.manual_seed(seed)
    robust = torch.zeros(len(y), dtype=torch.bool, device=y.device)
    norms = torch.zeros(len(y), dtype=torch.float64, device=y.device)
    todo = correct.nonzero().flatten()
    for start in range(0, len(todo), batch_size):
        idx = todo[start:start + batch_size]
        x_adv, batch_norms = attack.run(model, x[idx], y[idx])
        with torch.no_grad():
            still = model(x_adv).argmax(1) == y[idx]
        if attack.minimum_norm:
            still |= ~within_budget(batch_norms, attack.threat.eps).to(still.device)
        robust[idx] = still
        norms[idx] = batch_norms.to(norms.device)
    return AttackOutcome(robust.cpu(), norms.cpu(), time.perf_counter() - started)
