"""Evaluation: one clean pass per model, then each attack on the clean-correct examples.

Outcomes are per example, so the worst case over any subset of attacks can be computed later.
With a cell's speed settings the attack is crafted under bf16 autocast, in channels_last
memory, on the compiled model; the verdict (the forward on x_adv) stays fp32 and the budget
check float64, and a fixed subset is attacked again in fp32 to check that bf16 did not weaken
the attack.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import torch
from torch import nn

from harness.devices import autocast, channels_last, compile_model, compile_seconds
from harness.flags import raise_flag
from harness.guard import GuardedAttack
from harness.seeding import seed_everything
from harness.specs import FP32_EAGER, Fp32Check, Speed
from harness.threat import within_budget


@dataclass
class AttackOutcome:
    """Per-example results of one attack on the evaluation examples (in order)."""

    robust: torch.Tensor  # bool: still classified correctly within the budget
    norms: torch.Tensor  # float: perturbation norm (0 where the example was not attacked)
    fooled: torch.Tensor  # bool: misclassified after the attack, whatever the norm
    seconds: float  # run time, without compile_seconds
    compile_seconds: float = 0.0

    @property
    def accuracy(self) -> float:
        return float(self.robust.float().mean()) if len(self.robust) else 0.0

    @property
    def median_norm(self) -> float | None:
        """Median perturbation norm of the examples the attack fooled (minimum-norm attacks)."""
        norms = self.norms[self.fooled]
        return float(norms.median()) if len(norms) else None


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    model.eval()
    return torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


def clean_correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int
                  ) -> torch.Tensor:
    return predict(model, x, batch_size) == y


def run_attack(model: nn.Module, attack: GuardedAttack, x: torch.Tensor, y: torch.Tensor,
               targets: torch.Tensor, batch_size: int, seed: int, speed: Speed = FP32_EAGER,
               fp32_check: Fp32Check | None = None) -> AttackOutcome:
    """Attack the ``targets`` examples; every other example counts as broken already.

    Per-attack mode targets the clean-correct examples; the worst-case chain targets those
    still robust after the previous attacks. A minimum-norm attack's example is broken only if
    misclassified *and* within eps. Raises ContractViolation if a batch leaves the threat model.
    """
    started = time.perf_counter()
    compiled_before = compile_seconds() if speed.compile else 0.0
    if speed.channels_last:
        channels_last(model)
    net = compile_model(model) if speed.compile else model
    outcome = _attack(net, attack, x, y, targets, batch_size, seed, speed)
    if speed.amp and fp32_check is not None:
        _check_against_fp32(net, attack, x, y, targets, batch_size, seed, speed, outcome,
                            fp32_check)
    if speed.compile:
        outcome.compile_seconds = compile_seconds() - compiled_before
    outcome.seconds = time.perf_counter() - started - outcome.compile_seconds
    return outcome


def _attack(model: nn.Module, attack: GuardedAttack, x: torch.Tensor, y: torch.Tensor,
            targets: torch.Tensor, batch_size: int, seed: int, speed: Speed) -> AttackOutcome:
    seed_everything(seed)
    robust = torch.zeros(len(y), dtype=torch.bool, device=y.device)
    fooled = torch.zeros(len(y), dtype=torch.bool, device=y.device)
    norms = torch.zeros(len(y), dtype=torch.float64, device=y.device)
    todo = targets.nonzero().flatten()
    for start in range(0, len(todo), batch_size):
        idx = todo[start:start + batch_size]
        xb = x[idx]
        if speed.channels_last and xb.dim() == 4:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with autocast(speed.amp, xb.device):
            x_adv, batch_norms = attack.run(model, xb, y[idx])
        with torch.no_grad():
            correct_after = model(x_adv).argmax(1) == y[idx]
        still = correct_after.clone()
        if attack.minimum_norm:
            still |= ~within_budget(batch_norms, attack.threat.eps).to(still.device)
        robust[idx] = still
        fooled[idx] = ~correct_after
        norms[idx] = batch_norms.to(norms.device)
    return AttackOutcome(robust.cpu(), norms.cpu(), fooled.cpu(), 0.0)


def _check_against_fp32(model: nn.Module, attack: GuardedAttack, x: torch.Tensor,
                        y: torch.Tensor, targets: torch.Tensor, batch_size: int, seed: int,
                        speed: Speed, outcome: AttackOutcome, check: Fp32Check) -> None:
    """The attack again in fp32 on the first ``check.examples`` targets (the same examples on
    every run): bf16 gradients that weaken the attack would overstate robustness."""
    subset = targets.nonzero().flatten()[:check.examples]
    if not len(subset):
        return
    mask = torch.zeros_like(targets)
    mask[subset] = True
    fp32 = _attack(model, attack, x, y, mask, batch_size, seed, replace(speed, amp=False))
    subset = subset.cpu()
    bf16_accuracy = float(outcome.robust[subset].float().mean())
    fp32_accuracy = float(fp32.robust[subset].float().mean())
    if abs(bf16_accuracy - fp32_accuracy) > check.tolerance:
        raise_flag("bf16-mismatch", f"robust accuracy on the first {len(subset)} attacked "
                   f"examples is {100 * bf16_accuracy:.1f}% crafted in bf16 and "
                   f"{100 * fp32_accuracy:.1f}% in fp32 (tolerance "
                   f"{100 * check.tolerance:.1f} points)")


def check_model(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    """Flag models whose robustness numbers would mislead: randomness and zero input gradients.

    Two forwards of the same batch must agree (else gradient attacks fight noise; AutoAttack's
    'rand' version exists for that), and the loss must have a nonzero input gradient on
    every example (else gradient attacks cannot move: a sign of gradient masking).
    """
    model.eval()
    with torch.no_grad():
        first, second = model(x), model(x)
    if not torch.allclose(first, second, rtol=1e-4, atol=1e-5):
        raise_flag("nondeterministic-model", "two forward passes of the same batch differ; "
                   "use attacks for randomized models (e.g. autoattack version 'rand')")
    x = x.clone().requires_grad_(True)
    with torch.enable_grad():
        loss = nn.functional.cross_entropy(model(x), y, reduction="sum")
        if not loss.requires_grad:  # argmax, one-hot, a detach: no path from input to loss
            raise_flag("zero-gradients", "the loss has no gradient path to the input (a "
                       "non-differentiable step such as argmax?): gradient attacks cannot run")
            return
        (grad,) = torch.autograd.grad(loss, x, allow_unused=True)
    if grad is None:
        raise_flag("zero-gradients", "the input is not used by the loss's graph: gradient "
                   "attacks cannot run")
        return
    zero = (grad.flatten(1).abs().sum(dim=1) == 0).float().mean()
    if zero > 0:
        raise_flag("zero-gradients", f"{100 * float(zero):.1f}% of checked examples have an "
                   "all-zero input gradient: gradient attacks may be masked")
