"""Benchmark: the GPU path — fp32 eager vs bf16 + channels_last vs bf16 + channels_last + compile.

On synthetic CIFAR-shaped data (3×32×32, 10 classes: the ``synthetic`` dataset plugin, no
download), for ResNet-18 and WRN-34-10, through the harness's own code paths:

* one PGD-10 adversarial-training epoch (linf 8/255, step 2/255, batch 128, SGD) with
  ``harness.train.Trainer``, the three modes starting from the same weights and batches;
* AutoAttack standard (linf 8/255) on the test images with ``harness.evaluate.run_attack``,
  every mode attacking the same (fp32-trained) model.

Printed per model and mode: images/s (compile time excluded, and printed apart), the speed-up
over fp32, peak GPU memory, and the accuracy gap to fp32 (AutoAttack robust accuracy of the
same model, and clean accuracy of the model the mode trained). The modes set the recipe's and
the evaluation's ``amp``, ``channels_last`` and ``compile`` exactly as a suite would.

Run ``.venv/bin/python benchmarks/gpu.py`` on a CUDA machine: 5,000 training and 1,000 test
images (a tenth of CIFAR-10's training set keeps the whole run to minutes; images/s is the
figure that matters). ``--smoke`` runs tiny sizes on any device, CPU included (bf16 autocast
and channels_last run there too; compile uses the aot_eager backend so it takes seconds, and
AutoAttack is cut to APGD-CE with 2 iterations): the tests run it.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from common import report_load
from torch.utils.data import TensorDataset

from harness.build import build_attack
from harness.contracts import LoadedDataset
from harness.devices import compile_seconds, describe, resolve_device
from harness.evaluate import clean_correct, run_attack
from harness.plan import build_plan
from harness.runner import Runner
from harness.session import load_components
from harness.store import Store
from harness.suite import load_suite
from harness.train import Trainer

MODES = {  # amp, channels_last, compile
    "fp32 eager": (False, False, False),
    "bf16 + channels_last": (True, True, False),
    "bf16 + channels_last + compile": (True, True, True),
}
FULL = {
    "models": {"resnet18": '"resnet18"', "wrn-34-10": '"wrn-34-10"'},
    "train": 5000, "test": 1000, "batch": 128, "eval_batch": 500, "steps": 10,
    "autoattack": '{ name = "aa-standard-linf-8", label = "aa" }', "warm_up": True,
}
SMOKE = {
    "models": {"resnet18": '{ name = "resnet18", label = "resnet18 width 4", params = '
                           '{ width = 4 } }',
               "wrn-34-10": '{ name = "wide-resnet", label = "wrn depths 1 widths 1", params = '
                            '{ depths = [1, 1, 1], widths = [1, 1, 1] } }'},
    "train": 32, "test": 8, "batch": 16, "eval_batch": 8, "steps": 2,
    "autoattack": '{ name = "autoattack", label = "aa", norm = "linf", eps = "8/255", params = '
                  '{ version = "custom", attacks = ["apgd-ce"], n_iter = 2 } }',
    "warm_up": False,
}

SUITE = """
datasets = [{{ name = "synthetic", params = {{ channels = 3, size = 32, num_classes = 10, \
train_size = {train}, test_size = {test}, noise = 0.3 }} }}]
architectures = [{model}]
attacks = [{autoattack}]

[[recipes]]
name = "pgd10-at"
defense = "pgd-at"
epochs = 1
batch_size = {batch}
lr = 0.1
amp = {amp}
channels_last = {channels_last}
compile = {compile}
attack = {{ name = "pgd", eps = "8/255", params = {{ steps = {steps}, step_size = "2/255" }} }}

[evaluation]
batch_size = {eval_batch}
amp = {amp}
channels_last = {channels_last}
compile = {compile}
"""


@dataclass
class Measured:
    train_per_s: float
    train_compile: float
    train_memory: float | None
    clean: float
    eval_per_s: float
    eval_compile: float
    eval_memory: float | None
    robust: float


def peak_memory(device: torch.device) -> float | None:
    """Peak GiB allocated since the last reset (CUDA only)."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**30


def reset_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def plan_mode(components, sizes: dict, model: str, mode: tuple[bool, bool, bool], tmp: Path):
    amp, channels_last, compiled = (str(flag).lower() for flag in mode)
    path = tmp / "suite.toml"
    path.write_text(SUITE.format(model=model, amp=amp, channels_last=channels_last,
                                 compile=compiled, **{k: v for k, v in sizes.items()
                                                      if k not in ("models", "warm_up")}))
    # planned for CUDA wherever it runs: on a CPU (--smoke) the bf16 paths run there
    return build_plan(components, load_suite(path), "cuda")


def measure(components, sizes: dict, model: str, device: torch.device, tmp: Path
            ) -> dict[str, Measured]:
    """Every mode on one model. All modes attack the fp32-trained model (the first mode's),
    so their robust accuracies differ only by the mode."""
    results: dict[str, Measured] = {}
    reference: torch.nn.Module | None = None
    for mode_name, mode in MODES.items():
        plan = plan_mode(components, sizes, model, mode, tmp)
        cell, eval_cell = plan.train_cells[0], plan.eval_cells[0]
        runner = Runner(components, Store(tmp / "out"), device, tmp)
        data = runner.dataset(cell.dataset, plan)
        before = compile_seconds()
        if sizes["warm_up"]:  # two batches (compile, cuDNN autotuning), then the timed epoch
            x_train, y_train = data.train.tensors  # type: ignore[attr-defined]
            head = TensorDataset(x_train[:2 * sizes["batch"]], y_train[:2 * sizes["batch"]])
            Trainer(components, cell, LoadedDataset(head, data.test, data.info),
                    device).run_epoch()
        trainer = Trainer(components, cell, data, device)
        reset_memory(device)
        timed_from, started = compile_seconds(), time.perf_counter()
        trainer.run_epoch()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        train_seconds = time.perf_counter() - started - (compile_seconds() - timed_from)
        train_compile = compile_seconds() - before
        train_memory = peak_memory(device)
        x, y = runner.eval_data(cell.dataset, data, None)
        trained = trainer.model.eval()
        clean = float(clean_correct(trained, x, y, sizes["eval_batch"]).float().mean())
        if reference is None:
            reference = copy.deepcopy(trained)
        target = copy.deepcopy(reference)
        correct = clean_correct(target, x, y, sizes["eval_batch"])
        attack = build_attack(components, eval_cell.attack)
        eval_compile = 0.0
        if sizes["warm_up"]:  # one batch
            first = torch.zeros_like(correct)
            first[:sizes["eval_batch"]] = correct[:sizes["eval_batch"]]
            eval_compile = run_attack(target, attack, x, y, first, sizes["eval_batch"], 0,
                                      eval_cell.speed).compile_seconds
        reset_memory(device)
        outcome = run_attack(target, attack, x, y, correct, sizes["eval_batch"], 0,
                             eval_cell.speed)
        results[mode_name] = Measured(
            len(data.train) / train_seconds, train_compile, train_memory, clean,
            len(y) / outcome.seconds, eval_compile + outcome.compile_seconds,
            peak_memory(device), outcome.accuracy)
    return results


def report(name: str, results: dict[str, Measured]) -> None:
    fp32 = results["fp32 eager"]
    print(f"\n== {name}")
    print(f"  {'mode':32} {'AT img/s':>9} {'×fp32':>6} {'compile s':>9} {'peak GiB':>8} "
          f"{'clean gap':>9} | {'AA img/s':>9} {'×fp32':>6} {'compile s':>9} {'peak GiB':>8} "
          f"{'robust':>7} {'gap':>6}")

    def gib(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f}"

    for mode, r in results.items():
        print(f"  {mode:32} {r.train_per_s:9.1f} {r.train_per_s / fp32.train_per_s:6.2f} "
              f"{r.train_compile:9.1f} {gib(r.train_memory):>8} "
              f"{100 * (r.clean - fp32.clean):+8.1f}p | {r.eval_per_s:9.1f} "
              f"{r.eval_per_s / fp32.eval_per_s:6.2f} {r.eval_compile:9.1f} "
              f"{gib(r.eval_memory):>8} {100 * r.robust:6.1f}% {100 * (r.robust - fp32.robust):+5.1f}p")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes on any device (CPU included), for the tests")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--model", choices=list(FULL["models"]), action="append",
                        help="repeatable (default: both)")
    parser.add_argument("--train-images", type=int, default=None)
    parser.add_argument("--test-images", type=int, default=None)
    args = parser.parse_args(argv)
    sizes = dict(SMOKE if args.smoke else FULL)
    sizes["train"] = args.train_images or sizes["train"]
    sizes["test"] = args.test_images or sizes["test"]
    device = resolve_device(args.device)
    if device.type != "cuda" and not args.smoke:
        raise SystemExit(f"no CUDA device ({describe(device)}): run with --smoke for the tiny "
                         "CPU version")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    print(report_load("at start", torch.get_num_threads()))
    print(f"device {describe(device)}, torch {torch.__version__}; {sizes['train']} training and "
          f"{sizes['test']} test images (synthetic 3×32×32), PGD-{sizes['steps']} AT batch "
          f"{sizes['batch']}, AutoAttack batch {sizes['eval_batch']}")
    components = load_components(autoload=False)
    started = time.perf_counter()
    real_compile = torch.compile
    if args.smoke:  # dynamo captures the model as for inductor, which then never runs: seconds
        torch.compile = lambda model: real_compile(model, backend="eager")  # type: ignore
    try:
        for name in args.model or list(sizes["models"]):
            with tempfile.TemporaryDirectory() as tmp:
                model = sizes["models"][name]
                report(name if not args.smoke else model.split('"')[3],
                       measure(components, sizes, model, device, Path(tmp)))
    finally:
        torch.compile = real_compile
    print(f"\ntotal {time.perf_counter() - started:.0f} s; "
          f"{report_load('at end', torch.get_num_threads())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
