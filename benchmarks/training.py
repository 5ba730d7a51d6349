"""Benchmark: one PGD-10 adversarial-training epoch through the harness vs hand-written loops.

What is compared
----------------
*harness*: ``harness.train.Trainer.run_epoch`` for a PGD-AT cell (the ``pgd-at`` defense with
the registry's ``pgd`` attack, i.e. ``torchattacks.PGD``, crafted through ``GuardedAttack``:
eval-mode BatchNorm, parameters frozen while crafting, the batch copied and the model's
parameters and buffers verified after every attack, the budget checked in float64).

*(a) reference-style*: the loop most reference implementations write — the attack calls
``loss.backward()`` on the model, so every attack step also computes weight gradients.

*(b) tight*: the fastest eager loop we can write by hand — parameters frozen while crafting,
``torch.autograd.grad`` with respect to the input only, one train step per batch, no checks.

*harness compiled* (``--compile``): the same cell with ``compile = true``; its first epoch
(where torch.compile works) is run before the timed repeats and reported on its own.

All start from the same weights and optimizer state, see the same batches in the same order,
and use the same eps, steps and step size. Targets: harness <= 1.02x (b); (a) >= 1.4x the
harness; compiled harness faster than (b). Methods are interleaved, the order rotating.

Run ``.venv/bin/python benchmarks/training.py`` (about a minute on 2 cores; ``--compile`` adds
the compile time, a minute or more on a CPU with a cold inductor cache).
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from common import interleave, report_load, verdict
from torch import nn

from harness.components import Components
from harness.contracts import LoadedDataset
from harness.devices import compile_seconds
from harness.plan import build_plan
from harness.runner import Runner
from harness.session import load_components
from harness.store import Store
from harness.suite import load_suite
from harness.train import Trainer

EPS, STEPS, BATCH = 0.1, 10, 64
ALPHA = 2.5 * EPS / STEPS
ARCHITECTURES = {
    "small-cnn": '{ name = "small-cnn", params = { channels = 32, hidden = 128 } }',
    "resnet18-w16": '"resnet18-digits"',
}
RECIPE = (f'{{ name = "at", defense = "pgd-at", epochs = 1, batch_size = {BATCH}, lr = 0.05, '
          f'attack = {{ name = "pgd", eps = {EPS}, params = {{ steps = {STEPS}, '
          f'step_size = {ALPHA} }} }} }}')


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


class Restart:
    """Puts a trainer back to its first epoch's start (weights, optimizer, schedule, batch
    order, global RNG) in place, so a compiled model keeps its compiled code."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.state = copy.deepcopy((trainer.model.state_dict(), trainer.optimizer.state_dict(),
                                    trainer.schedule.state_dict()))
        self.generator = trainer.generator.get_state()

    def __call__(self) -> Trainer:
        model, optimizer, schedule = self.state
        self.trainer.model.load_state_dict(model)
        self.trainer.optimizer.load_state_dict(optimizer)
        self.trainer.schedule.load_state_dict(schedule)
        self.trainer.generator.set_state(self.generator)
        torch.manual_seed(0)
        return self.trainer


def trainer_for(architecture: str, recipe: str, compiled: bool
                ) -> tuple[Trainer, Components, LoadedDataset]:
    """A CPU trainer for one digits cell: ``architecture`` a suite item, ``recipe`` an inline
    table or a preset name, with ``compile`` set."""
    components = load_components(autoload=False)
    flag = f"compile = {str(compiled).lower()}"
    recipe = (f"{recipe[:-1]}, {flag} }}" if recipe.startswith("{")
              else f'{{ name = "{recipe}", {flag} }}')
    with tempfile.TemporaryDirectory() as tmp:
        suite = Path(tmp) / "suite.toml"
        suite.write_text(f'datasets = ["digits"]\narchitectures = [{architecture}]\n'
                         f"recipes = [{recipe}]\n")
        plan = build_plan(components, load_suite(suite))
        cell = plan.train_cells[0]
        runner = Runner(components, Store(Path(tmp) / "out"), torch.device("cpu"), Path(tmp))
        data = runner.dataset(cell.dataset, plan)
    return Trainer(components, cell, data, torch.device("cpu")), components, data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: steadier on a shared machine)")
    parser.add_argument("--arch", choices=list(ARCHITECTURES), default="small-cnn")
    parser.add_argument("--compile", action="store_true", help="also time compile = true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    eager, _, data = trainer_for(ARCHITECTURES[args.arch], RECIPE, compiled=False)
    restart = Restart(eager)
    methods: dict[str, Callable[[], object]] = {
        "harness": lambda: restart().run_epoch(),
        "(a) reference-style": lambda: hand_epoch(restart(), pgd_reference, freeze=False),
        "(b) tight": lambda: hand_epoch(restart(), pgd_tight, freeze=True),
    }
    compile_note = ""
    if args.compile:
        compiled, _, _ = trainer_for(ARCHITECTURES[args.arch], RECIPE, compiled=True)
        compiled.model.load_state_dict(eager.model.state_dict())
        again = Restart(compiled)
        before = compile_seconds()
        again().run_epoch()  # the first epoch compiles (train step, attack; last batch)
        compile_note = f"compile: {compile_seconds() - before:.1f} s in the first epoch"
        methods["harness compiled"] = lambda: again().run_epoch()
    for method in methods.values():  # warm-up: allocator, autograd, oneDNN primitives
        method()
    print(report_load("at start", args.threads))
    runs = interleave(methods, args.repeats)
    print(f"one PGD-{STEPS} AT epoch, {args.arch} on digits ({len(data.train)} examples, batch {BATCH}), "
          f"{torch.get_num_threads()} thread(s), {args.repeats} interleaved repeats:")
    print(runs.table())
    best, paired = runs.ratio("harness", "(b) tight")
    print(f"harness / (b) tight             = {best:.3f} (paired median {paired:.3f})  "
          f"{verdict(best, 1.02)}")
    best, paired = runs.ratio("(a) reference-style", "harness")
    print(f"(a) reference-style / harness   = {best:.3f} (paired median {paired:.3f})  "
          f"{verdict(best, 1.4, below=False)}")
    tight_ref, _ = runs.ratio("(a) reference-style", "(b) tight")
    print(f"(a) reference-style / (b) tight = {tight_ref:.3f}  (the most any eager loop can gain)")
    if args.compile:
        best, paired = runs.ratio("harness compiled", "(b) tight")
        print(f"harness compiled / (b) tight    = {best:.3f} (paired median {paired:.3f})  "
              f"{verdict(best, 1.0)}; {compile_note}")
    print(report_load("at end", args.threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
