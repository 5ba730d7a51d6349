"""Benchmark: one PGD-10 adversarial-training epoch through the harness vs hand-written loops.

What is compared
----------------
*harness*: ``harness.train.Trainer.run_epoch`` for a PGD-AT cell (the ``pgd-at`` defense with
the registry's ``pgd`` attack, crafted through ``GuardedAttack``: eval-mode BatchNorm,
parameters frozen while crafting, the budget checked on every batch).

*(a) reference-style*: the loop most reference implementations write — the attack calls
``loss.backward()`` on the model, so every attack step also computes weight gradients.

*(b) tight*: the fastest loop we can write by hand — parameters frozen while crafting,
``torch.autograd.grad`` with respect to the input only, one train step per batch.

All three start from the same weights, see the same batches in the same order, and use the
same eps, steps and step size. Targets: faster than (a), within 5% of (b). The three are
interleaved over repeats and the minimum time of each is compared.

Run ``.venv/bin/python benchmarks/training.py`` (about a minute on 2 cores) or ``--quick``.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from harness.plan import build_plan
from harness.runner import Runner
from harness.session import load_components
from harness.store import Store
from harness.suite import load_suite
from harness.train import Trainer

EPS, STEPS, BATCH = 0.1, 10, 64
ALPHA = 2.5 * EPS / STEPS

SUITE = f"""
datasets = ["digits"]
architectures = [{{ name = "small-cnn", params = {{ channels = 32, hidden = 128 }} }}]

[[recipes]]
name = "at"
defense = "pgd-at"
epochs = 1
batch_size = {BATCH}
lr = 0.05
attack = {{ name = "pgd", eps = {EPS}, params = {{ steps = {STEPS}, step_size = {ALPHA} }} }}
"""


def pgd_reference(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(a): gradients flow to the weights too, as in most published training scripts."""
    delta = torch.empty_like(x).uniform_(-EPS, EPS)
    for _ in range(STEPS):
        delta.requires_grad_(True)
        loss = F.cross_entropy(model((x + delta).clamp(0, 1)), y)
        loss.backward()
        delta = (delta + ALPHA * delta.grad.sign()).clamp(-EPS, EPS).detach()
    return (x + delta).clamp(0, 1)


def pgd_tight(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(b): input gradients only."""
    delta = torch.empty_like(x).uniform_(-EPS, EPS)
    for _ in range(STEPS):
        delta.requires_grad_(True)
        loss = F.cross_entropy(model((x + delta).clamp(0, 1)), y)
        (grad,) = torch.autograd.grad(loss, delta)
        delta = (delta + ALPHA * grad.sign()).clamp(-EPS, EPS).detach()
    return (x + delta).clamp(0, 1)


def hand_epoch(trainer: Trainer, attack: Callable[..., torch.Tensor], freeze: bool) -> None:
    model, optimizer = trainer.model, trainer.optimizer
    for x, y in trainer.batches():
        model.eval()
        if freeze:
            for p in model.parameters():
                p.requires_grad_(False)
        x_adv = attack(model, x, y)
        for p in model.parameters():
            p.requires_grad_(True)
        model.train()
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x_adv), y).backward()
        optimizer.step()
        trainer.schedule.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one repeat")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = 1 if args.quick else args.repeats
    components = load_components(autoload=False)
    with tempfile.TemporaryDirectory() as tmp:
        suite = Path(tmp) / "suite.toml"
        suite.write_text(SUITE)
        plan = build_plan(components, load_suite(suite))
        cell = plan.train_cells[0]
        runner = Runner(components, Store(Path(tmp) / "out"), torch.device("cpu"), Path(tmp))
        data = runner.dataset(cell.dataset, plan)
        template = Trainer(components, cell, data, torch.device("cpu"))
        initial = copy.deepcopy(template.model.state_dict())

        def fresh() -> Trainer:
            trainer = Trainer(components, cell, data, torch.device("cpu"))
            trainer.model.load_state_dict(initial)
            return trainer

        methods: dict[str, Callable[[Trainer], object]] = {
            "harness": lambda t: t.run_epoch(),
            "(a) reference-style": lambda t: hand_epoch(t, pgd_reference, freeze=False),
            "(b) tight": lambda t: hand_epoch(t, pgd_tight, freeze=True),
        }
        times: dict[str, list[float]] = {name: [] for name in methods}
        for repeat in range(repeats):
            order = list(methods) if repeat % 2 == 0 else list(reversed(methods))
            for name in order:
                trainer = fresh()
                torch.manual_seed(0)
                started = time.perf_counter()
                methods[name](trainer)
                times[name].append(time.perf_counter() - started)
    best = {name: min(values) for name, values in times.items()}
    print(f"one PGD-{STEPS} AT epoch, small-cnn on digits ({len(data.train)} examples, batch "
          f"{BATCH}), {torch.get_num_threads()} threads, min of {repeats}:")
    for name, seconds in best.items():
        print(f"  {name:22} {seconds:7.3f} s")
    print(f"harness / (a) reference-style = {best['harness'] / best['(a) reference-style']:.3f}"
          "  (target < 1)")
    print(f"harness / (b) tight           = {best['harness'] / best['(b) tight']:.3f}"
          "  (target <= 1.05)")


if __name__ == "__main__":
    main()
