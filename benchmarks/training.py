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

Both hand loops run torchattacks.PGD's algorithm step for step, so all three train the same
model: the script checks their weights after the epoch are bit-identical.

*harness bf16+cl*: the same cell with ``amp = true, channels_last = true``, the settings a
CUDA cell gets by default, opted into here on the CPU (left unset they are off on a CPU). Worth
it on a CPU with native bf16 (AVX512-BF16, AMX); ``--no-bf16`` drops it.

*harness compiled* (``--compile``): the same cell with ``compile = true``; its first epoch
(where torch.compile works) is run before the timed repeats and reported on its own.

All start from the same weights and optimizer state, see the same batches in the same order,
and use the same eps, steps and step size. Targets: harness <= 1.02x (b); (a) >= 1.4x the
harness; compiled harness faster than (b). Methods are interleaved, the order rotating. After
the timings, each method's model after one more epoch is measured in fp32 (clean and PGD
accuracy on 512 training examples), so a faster method that trains worse shows.

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


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, input_grad_only: bool
        ) -> torch.Tensor:
    """torchattacks.PGD's algorithm, step for step (random start, sign step, projection, box),
    so a hand loop trains the same model as the harness: only the gradient call differs."""
    x_adv = (x + torch.empty_like(x).uniform_(-EPS, EPS)).clamp(0, 1)
    for _ in range(STEPS):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y)
        if input_grad_only:  # (b)
            (grad,) = torch.autograd.grad(loss, x_adv)
        else:  # (a): gradients flow to the weights too, as in most published training scripts
            loss.backward()
            grad = x_adv.grad
        step = x_adv.detach() + ALPHA * grad.sign()
        x_adv = (x + (step - x).clamp(-EPS, EPS)).clamp(0, 1)
    return x_adv.detach()


def pgd_reference(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return pgd(model, x, y, input_grad_only=False)


def pgd_tight(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return pgd(model, x, y, input_grad_only=True)


def epoch_of(trainer: Trainer) -> Trainer:
    trainer.run_epoch()
    return trainer


def hand_epoch(trainer: Trainer, attack: Callable[..., torch.Tensor], freeze: bool) -> Trainer:
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
    return trainer


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


def trainer_for(architecture: str, recipe: str, settings: str = "compile = false",
                dataset: str = '"digits"') -> tuple[Trainer, Components, LoadedDataset]:
    """A CPU trainer for one cell: ``architecture`` and ``dataset`` suite items (digits by
    default), ``recipe`` an inline table or a preset name, with ``settings`` (recipe keys, e.g.
    "compile = true") added."""
    components = load_components(autoload=False)
    recipe = (f"{recipe[:-1]}, {settings} }}" if recipe.startswith("{")
              else f'{{ name = "{recipe}", {settings} }}')
    with tempfile.TemporaryDirectory() as tmp:
        suite = Path(tmp) / "suite.toml"
        suite.write_text(f"datasets = [{dataset}]\narchitectures = [{architecture}]\n"
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
    parser.add_argument("--clock", choices=["wall", "cpu"], default=None,
                        help="what the ratios compare (default: CPU time with one thread, "
                             "which other processes disturb less; wall time with more)")
    parser.add_argument("--no-bf16", dest="bf16", action="store_false",
                        help="do not time amp = true, channels_last = true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    eager, _, data = trainer_for(ARCHITECTURES[args.arch], RECIPE)
    restart = Restart(eager)
    methods: dict[str, Callable[[], Trainer]] = {
        "harness": lambda: epoch_of(restart()),
        "(a) reference-style": lambda: hand_epoch(restart(), pgd_reference, freeze=False),
        "(b) tight": lambda: hand_epoch(restart(), pgd_tight, freeze=True),
    }
    if args.bf16:
        fast, _, _ = trainer_for(ARCHITECTURES[args.arch], RECIPE,
                                 "amp = true, channels_last = true")
        fast.model.load_state_dict(eager.model.state_dict())
        fast_restart = Restart(fast)
        methods["harness bf16+cl"] = lambda: epoch_of(fast_restart())
    compile_note = ""
    if args.compile:
        compiled, _, _ = trainer_for(ARCHITECTURES[args.arch], RECIPE, "compile = true")
        compiled.model.load_state_dict(eager.model.state_dict())
        again = Restart(compiled)
        before = compile_seconds()
        again().run_epoch()  # the first epoch compiles (train step, attack; last batch)
        compile_note = f"compile: {compile_seconds() - before:.1f} s in the first epoch"
        methods["harness compiled"] = lambda: epoch_of(again())
    for method in methods.values():  # warm-up: allocator, autograd, oneDNN primitives
        method()
    print(report_load("at start", args.threads))
    clock = args.clock or ("cpu" if args.threads == 1 else "wall")
    runs = interleave(methods, args.repeats, clock)
    print(f"one PGD-{STEPS} AT epoch, {args.arch} on digits ({len(data.train)} examples, batch "
          f"{BATCH}), {torch.get_num_threads()} thread(s), {args.repeats} interleaved repeats, "
          f"ratios of {clock} time:")
    print(runs.table())
    best, paired = runs.ratio("harness", "(b) tight")
    print(f"harness / (b) tight             = {best:.3f} (paired median {paired:.3f})  "
          f"{verdict(best, 1.02)}")
    best, paired = runs.ratio("(a) reference-style", "harness")
    print(f"(a) reference-style / harness   = {best:.3f} (paired median {paired:.3f})  "
          f"{verdict(best, 1.4, below=False)}")
    tight_ref, _ = runs.ratio("(a) reference-style", "(b) tight")
    print(f"(a) reference-style / (b) tight = {tight_ref:.3f}  (the most any fp32 eager loop "
          "can gain)")
    if args.bf16:
        best, paired = runs.ratio("(a) reference-style", "harness bf16+cl")
        print(f"(a) reference-style / harness bf16+cl = {best:.3f} (paired median "
              f"{paired:.3f})  {verdict(best, 1.4, below=False)}")
        best, paired = runs.ratio("harness bf16+cl", "(b) tight")
        print(f"harness bf16+cl / (b) tight     = {best:.3f} (paired median {paired:.3f})")
    if args.compile:
        best, paired = runs.ratio("harness compiled", "(b) tight")
        print(f"harness compiled / (b) tight    = {best:.3f} (paired median {paired:.3f})  "
              f"{verdict(best, 1.0)}; {compile_note}")
    print("after one epoch from the same start, fp32 accuracy on the probe's "
          f"{len(eager.probe.sets['train'][1])} training examples (clean / PGD):")
    weights: dict[str, list[torch.Tensor]] = {}
    for name, method in methods.items():
        trainer = method()
        weights[name] = [p.detach().clone() for p in trainer.model.parameters()]
        accuracy = trainer.probe.measure(trainer.model)
        print(f"  {name:28} {100 * accuracy['train_clean']:5.1f} / "
              f"{100 * accuracy['train_robust']:5.1f}")
    same = all(all(torch.equal(a, b) for a, b in zip(weights["harness"], weights[name],
                                                     strict=True))
               for name in ("(a) reference-style", "(b) tight"))
    print(f"harness, (a) and (b) end with bit-identical weights: {'yes' if same else 'NO'}")
    print(report_load("at end", args.threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
