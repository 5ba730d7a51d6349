"""Benchmark: the harness's evaluation path versus hand-written torchattacks PGD.

What is compared
----------------
*harness*: what the engine's runner does for one evaluation cell —
``harness.evaluate.clean_correct``, then ``harness.build.build_attack`` (registry entry
``pgd``, resolved with ``harness.resolve.resolve_attacks`` exactly as a suite's attack is), then
``harness.evaluate.run_attack`` on the clean-correct examples; the timed region covers those
three calls (``load_components`` runs once, outside it). That adds, around the bare attack,
the ``GuardedAttack`` contract (eval mode and mode restore, parameter-gradient save/restore,
budget check in float64), one ``torchattacks.PGD`` construction per batch (in the plugin), and
per-example bookkeeping.

*direct*: what a hand-written evaluation needs: one batched clean forward, one
``torchattacks.PGD`` built once, the attack on the clean-correct examples in the same batches,
and one robust-accuracy forward per batch.

Both use the same model, data, eps, steps, step size, batch size and seed (set with
``torch.manual_seed`` right before the attack loop, where ``run_attack`` sets it), so the
random starts and the per-example outcomes should match exactly. The figure of merit is the
ratio of the minimum times (harness / direct), target <= 1.02: the engine's contract should
cost next to nothing next to the attack itself. The two methods are interleaved (alternating
which goes first) so other load on the machine affects both alike, and each run records how
many CPUs other processes used meanwhile (Linux /proc/stat), so a contaminated figure is
flagged. A per-batch breakdown of the harness-only work follows.

Configurations
--------------
* digits: the ``small-cnn`` factory on the ``digits`` dataset plugin (360 test examples),
  trained here for a few epochs with plain Adam so most examples are clean-correct;
  PGD-20 linf eps 0.1, step eps/8, batch 128 (the engine's default evaluation batch size).
* resnet: the ``resnet18`` factory (width 64), randomly initialised, on 64 examples of the
  ``synthetic`` dataset plugin at 3×32×32 (10 classes); labels are the model's own predictions
  so every example is clean-correct and the attack does full work; PGD-10 linf 8/255,
  step 2/255, batch 64.

Run ``.venv/bin/python benchmarks/evaluation.py`` (1.5–2.5 minutes on 2 cores) or add
``--quick`` (under a minute). See benchmarks/README.md for the output.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torchattacks
from common import busy_cpus, system_busy_seconds
from torch import nn

from harness.build import build_attack, build_model
from harness.build import load_dataset as harness_load_dataset
from harness.cells import Resolved
from harness.components import Components
from harness.contracts import LoadedDataset
from harness.evaluate import clean_correct, run_attack
from harness.guard import GuardedAttack
from harness.resolve import resolve_attacks, resolve_component
from harness.session import load_components
from harness.specs import AttackRef, ComponentRef
from harness.threat import check_adversarial_batch
from harness.tomlfile import Where

TARGET_RATIO = 1.02
ATTACK_SEED = 1234
WHERE = Where("benchmarks/evaluation.py")


@dataclass(frozen=True)
class Config:
    """One benchmark setting: the data and model recipe plus the attack both methods run."""

    name: str
    description: str
    eps: float
    alpha: float
    steps: int
    batch_size: int
    attack_ref: AttackRef
    repeats: int


@dataclass
class Setup:
    """A fixed model and fixed evaluation tensors, plus the engine's resolved attack."""

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    resolved: Resolved
    notes: list[str] = field(default_factory=list)


@dataclass
class Result:
    """One timed evaluation: seconds, per-example robust flags and clean-correct flags."""

    seconds: float
    robust: torch.Tensor
    correct: torch.Tensor
    other_load: float | None = None  # CPUs kept busy by other processes during the run

    @property
    def accuracy(self) -> float:
        return float(self.robust.float().mean())


# --- the two methods ----------------------------------------------------------------------------


def harness_eval(components: Components, resolved: Resolved, model: nn.Module, x: torch.Tensor,
                 y: torch.Tensor, batch_size: int, seed: int) -> Result:
    """The runner's evaluation of one cell: clean pass, build the attack, run it."""
    started = time.perf_counter()
    correct = clean_correct(model, x, y, batch_size)
    attack = build_attack(components, resolved)
    outcome = run_attack(model, attack, x, y, correct, batch_size, seed)
    return Result(time.perf_counter() - started, outcome.robust, correct)


def direct_eval(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: Config,
                seed: int) -> Result:
    """A hand-written evaluation with torchattacks.PGD and nothing else."""
    started = time.perf_counter()
    bs = config.batch_size
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + bs]).argmax(1) for i in range(0, len(x), bs)])
    correct = pred == y
    todo = correct.nonzero().flatten()
    attack = torchattacks.PGD(model, eps=config.eps, alpha=config.alpha, steps=config.steps,
                              random_start=True)
    torch.manual_seed(seed)
    robust = torch.zeros(len(y), dtype=torch.bool)
    for start in range(0, len(todo), bs):
        idx = todo[start:start + bs]
        x_adv = attack(x[idx], y[idx])
        with torch.no_grad():
            robust[idx] = model(x_adv).argmax(1) == y[idx]
    return Result(time.perf_counter() - started, robust, correct)


# --- fixed models and data ----------------------------------------------------------------------


def load_dataset(components: Components, name: str, params: dict[str, object]) -> LoadedDataset:
    resolved = resolve_component(components, "datasets", ComponentRef(name=name, params=params),
                                 WHERE)
    return harness_load_dataset(components, resolved, Path("data"))


def make_model(components: Components, name: str, params: dict[str, object],
               data: LoadedDataset) -> nn.Module:
    arch = resolve_component(components, "architectures", ComponentRef(name=name, params=params),
                             WHERE)
    return build_model(components, arch, data.info, torch.device("cpu"))


def resolve_pgd(components: Components, config: Config) -> Resolved:
    """The engine's resolution of the attack, checked against the direct method's settings."""
    [resolved] = resolve_attacks(components, config.attack_ref, WHERE)
    entry = components.attacks.get(resolved.factory)
    params = entry.make_params(resolved.params)
    assert resolved.threat is not None and resolved.threat.norm == "linf"
    assert resolved.threat.eps == config.eps, (resolved.threat.eps, config.eps)
    assert params.steps == config.steps and params.random_start  # type: ignore[attr-defined]
    assert params.alpha(config.eps) == config.alpha  # type: ignore[attr-defined]
    return resolved


def setup_digits(components: Components, config: Config, epochs: int) -> Setup:
    """small-cnn on digits, trained briefly with plain Adam (seeded, so the model is fixed)."""
    data = load_dataset(components, "digits", {})
    torch.manual_seed(0)
    model = make_model(components, "small-cnn", {}, data)
    x_train, y_train = data.train.tensors  # type: ignore[attr-defined]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x_train), generator=generator)
        for start in range(0, len(order), 64):
            idx = order[start:start + 64]
            optimizer.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x_train[idx]), y_train[idx]).backward()
            optimizer.step()
    optimizer.zero_grad(set_to_none=True)  # as a model loaded from a checkpoint: no .grad
    model.eval()
    x, y = data.test.tensors  # type: ignore[attr-defined]
    note = (f"trained {epochs} epochs with Adam (lr 1e-3, batch 64) in "
            f"{time.perf_counter() - started:.1f} s")
    return Setup(model, x, y, resolve_pgd(components, config), [note])


def setup_resnet(components: Components, config: Config, n: int) -> Setup:
    """Random-init ResNet-18 on synthetic 3×32×32 inputs labelled by the model itself."""
    data = load_dataset(components, "synthetic", {
        "channels": 3, "size": 32, "num_classes": 10, "train_size": 256, "test_size": n})
    torch.manual_seed(0)
    model = make_model(components, "resnet18", {"width": 64}, data).eval()
    x, _ = data.test.tensors  # type: ignore[attr-defined]
    with torch.no_grad():  # also warms up the forward pass
        y = torch.cat([model(x[i:i + config.batch_size]).argmax(1)
                       for i in range(0, len(x), config.batch_size)])
    params = sum(p.numel() for p in model.parameters())
    note = (f"random init ({params / 1e6:.1f}M params); labels = the model's predictions "
            f"({len(y.unique())} distinct classes), so all {n} examples are clean-correct")
    return Setup(model, x, y, resolve_pgd(components, config), [note])


# --- measurement --------------------------------------------------------------------------------


def warm_up(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: Config) -> None:
    """One short attack so the first timed run does not pay for allocator/autograd warm-up."""
    bs = config.batch_size
    torchattacks.PGD(model.eval(), eps=config.eps, alpha=config.alpha, steps=1)(x[:bs], y[:bs])


def per_call(fn: Callable[[], object], min_seconds: float = 0.2, max_calls: int = 2000) -> float:
    """Minimum seconds of one call of ``fn`` over repeated calls (at least 3)."""
    best, spent, calls = float("inf"), 0.0, 0
    while calls < 3 or (spent < min_seconds and calls < max_calls):
        started = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - started
        best, spent, calls = min(best, elapsed), spent + elapsed, calls + 1
    return best


def breakdown(components: Components, setup: Setup, config: Config, attack_batch_seconds: float
              ) -> list[tuple[str, float]]:
    """Seconds per attack batch of each piece of work only the harness path does."""
    model, resolved = setup.model, setup.resolved
    assert resolved.threat is not None
    bs = config.batch_size
    xb, yb = setup.x[:bs], setup.y[:bs]
    pgd = torchattacks.PGD(model, eps=config.eps, alpha=config.alpha, steps=1)
    torch.manual_seed(ATTACK_SEED)
    x_adv = pgd(xb, yb).detach()
    fixed = GuardedAttack(lambda _m, _x, _y: x_adv, resolved.threat)  # attack cost removed
    pieces: list[tuple[str, float]] = [
        ("build_attack (pydantic params + closure), once per cell",
         per_call(lambda: build_attack(components, resolved))),
        ("torchattacks.PGD(...) construction, per batch",
         per_call(lambda: torchattacks.PGD(model, eps=config.eps, alpha=config.alpha,
                                           steps=config.steps))),
        ("check_adversarial_batch (float64 norms, isfinite, min/max), per batch",
         per_call(lambda: check_adversarial_batch(xb, x_adv, resolved.threat))),
        ("GuardedAttack.run minus the attack, param .grad None, per batch",
         per_call(lambda: fixed.run(model, xb, yb))),
    ]
    params = list(model.parameters())
    for p in params:  # as right after harness.train.train: the last batch's gradients remain
        p.grad = torch.zeros_like(p)
    try:
        pieces.append(("GuardedAttack.run minus the attack, param .grad set (fresh from "
                       "train()), per batch", per_call(lambda: fixed.run(model, xb, yb))))
    finally:
        for p in params:
            p.grad = None
    pieces.append(("(reference) direct evaluation time per attack batch", attack_batch_seconds))
    return pieces


def fmt_seconds(seconds: float) -> str:
    size = abs(seconds)
    if size >= 1:
        return f"{seconds:.3f} s"
    if size >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds * 1e6:.1f} µs"


def run_config(components: Components, config: Config, setup: Setup) -> float:
    """Time both methods, print the comparison and the breakdown; return the ratio."""
    model, x, y, bs = setup.model, setup.x, setup.y, config.batch_size
    cpus = os.cpu_count() or 1
    print(f"\n== {config.name}: {config.description}")
    print(f"   PGD-{config.steps} linf eps={config.eps:.6g} step={config.alpha:.6g} "
          f"random start, batch {bs}, {len(y)} examples, {config.repeats} repeat(s), seed "
          f"{ATTACK_SEED}")
    for note in setup.notes:
        print(f"   {note}")
    warm_up(model, x, y, config)
    methods: dict[str, Callable[[], Result]] = {
        "harness": lambda: harness_eval(components, setup.resolved, model, x, y, bs, ATTACK_SEED),
        "direct": lambda: direct_eval(model, x, y, config, ATTACK_SEED),
    }
    runs: dict[str, list[Result]] = {name: [] for name in methods}
    for repeat in range(config.repeats):
        order = list(methods) if repeat % 2 == 0 else list(reversed(methods))
        for name in order:
            runs[name].append(measured(methods[name]))
    correct = runs["direct"][0].correct
    n_correct = int(correct.sum())
    batches = -(-n_correct // bs)
    print(f"   clean accuracy {float(correct.float().mean()):.4f} ({n_correct}/{len(y)} "
          f"clean-correct, {batches} attack batch(es))")
    print(f"   {'method':<8} {'min s':>9} {'median s':>9} {'max s':>9} {'robust acc':>11} "
          f"{'other load':>11}")
    for name, results in runs.items():
        times = [r.seconds for r in results]
        best = min(results, key=lambda r: r.seconds)
        load = "n/a" if best.other_load is None else f"{best.other_load:.2f} CPUs"
        print(f"   {name:<8} {min(times):9.3f} {statistics.median(times):9.3f} {max(times):9.3f} "
              f"{results[0].accuracy:11.4f} {load:>11}")
    loads = [r.other_load for results in runs.values() for r in results if r.other_load is not None]
    if loads:
        print(f"   other processes during timed runs: {min(loads):.2f}-{max(loads):.2f} CPUs busy"
              " (the 'other load' column is for each method's fastest run)")
        best_loads = [min(rs, key=lambda r: r.seconds).other_load or 0.0 for rs in runs.values()]
        if max(best_loads) > 0.1 and max(best_loads) + torch.get_num_threads() > cpus + 0.1:
            print("   WARNING: a fastest run shared the CPUs with other processes; the ratio is "
                  "not reliable, rerun on an idle machine or with more repeats")
    t_harness = min(r.seconds for r in runs["harness"])
    t_direct = min(r.seconds for r in runs["direct"])
    ratio = t_harness / t_direct
    verdict = "ok" if ratio <= TARGET_RATIO else "OVER TARGET"
    print(f"   ratio harness/direct (min times): {ratio:.3f}  (target <= {TARGET_RATIO}: "
          f"{verdict}); difference {fmt_seconds(t_harness - t_direct)}")
    paired = [h.seconds / d.seconds for h, d in zip(runs["harness"], runs["direct"], strict=True)]
    print(f"   paired ratios (harness/direct run of the same repeat, adjacent in time): median "
          f"{statistics.median(paired):.3f}, range {min(paired):.3f}-{max(paired):.3f}")
    if abs(statistics.median(paired) - ratio) > 0.05:
        print("   NOTE: the min-time and paired ratios disagree by more than 0.05: the timings are "
              "noise-dominated; rerun on an idle machine or with more repeats")
    all_results = [r for results in runs.values() for r in results]
    same_correct = all(torch.equal(r.correct, correct) for r in all_results)
    same_robust = all(torch.equal(r.robust, runs["direct"][0].robust) for r in all_results)
    print(f"   clean-correct sets identical: {'yes' if same_correct else 'NO'}; per-example "
          f"robust outcomes identical across methods and repeats: "
          f"{'yes' if same_robust else 'NO'}")
    print("   harness-only work (minimum per call):")
    for label, seconds in breakdown(components, setup, config, t_direct / max(batches, 1)):
        print(f"     {fmt_seconds(seconds):>11}  {label}")
    return ratio


def measured(run: Callable[[], Result]) -> Result:
    """Run one timed evaluation and note how many CPUs other processes used meanwhile."""
    busy, own = system_busy_seconds(), time.process_time()
    result = run()
    busy_after, own_after = system_busy_seconds(), time.process_time()
    if busy is not None and busy_after is not None:
        others = (busy_after - busy) - (own_after - own)
        result.other_load = max(0.0, others / result.seconds)
    return result


def report_load(when: str, threads: int) -> None:
    """Print how busy the CPUs are while this script sleeps; warn on competing processes.

    With as many OpenMP threads as cores, a single competing process can slow every op many
    times over (threads wait on each other at every parallel region), which swamps what this
    benchmark measures; the interleaved minimum only helps against intermittent load.
    """
    busy = busy_cpus()
    cpus = os.cpu_count() or 1
    if busy is None:
        return
    print(f"other load {when}: {busy:.2f} of {cpus} CPUs busy (sampled over 0.5 s)")
    if busy > 0.3 and threads + busy > cpus:
        hint = " (or try --threads 1)" if threads > 1 else ""
        print(f"WARNING: other processes are using the CPUs; with {threads} thread(s) on {cpus} "
              f"CPUs the times can inflate many-fold and vary wildly. Rerun on an idle "
              f"machine{hint}.")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats (digits 5, resnet 2): under a minute on 2 cores")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repeats per method for digits (default 20, --quick 5)")
    parser.add_argument("--resnet-repeats", type=int, default=None,
                        help="timed repeats per method for resnet (default 3, --quick 1)")
    parser.add_argument("--threads", type=int, default=cpus or 1,
                        help=f"torch intra-op threads (default: all available CPUs, {cpus})")
    parser.add_argument("--only", choices=["digits", "resnet"], default=None,
                        help="run one configuration only")
    parser.add_argument("--epochs", type=int, default=5,
                        help="Adam epochs for the digits CNN (default 5)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for flag in ("repeats", "resnet_repeats", "threads", "epochs"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise SystemExit(f"--{flag.replace('_', '-')} must be >= 1")
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    digits_repeats = args.repeats or (5 if args.quick else 20)
    resnet_repeats = args.resnet_repeats or (2 if args.quick else 3)
    started = time.perf_counter()
    print("robust-harness evaluation benchmark: harness path vs direct torchattacks.PGD")
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, torchattacks "
          f"{torchattacks.__version__}, device cpu")
    print(f"torch threads: intra-op {torch.get_num_threads()}, inter-op "
          f"{torch.get_num_interop_threads()}")
    report_load("at start", args.threads)
    components = load_components()
    configs: list[tuple[Config, Callable[[Config], Setup]]] = []
    # Step sizes are given as plain absolute numbers: the one spelling every version of the
    # pgd plugin's step-size parameter accepts; resolve_pgd checks the resolved alpha.
    if args.only in (None, "digits"):
        config = Config(
            "digits", "small-cnn on scikit-learn digits (8×8, 360 test examples)",
            eps=0.1, alpha=0.1 / 8, steps=20, batch_size=128, repeats=digits_repeats,
            attack_ref=AttackRef(name="pgd", norm="linf", eps=0.1,
                                 params={"steps": 20, "step_size": 0.1 / 8}))
        configs.append((config, lambda c: setup_digits(components, c, args.epochs)))
    if args.only in (None, "resnet"):
        config = Config(
            "resnet", "resnet18 width 64 on synthetic 3×32×32 (64 examples, 10 classes)",
            eps=8 / 255, alpha=2 / 255, steps=10, batch_size=64, repeats=resnet_repeats,
            attack_ref=AttackRef(name="pgd", norm="linf", eps="8/255",
                                 params={"steps": 10, "step_size": 2 / 255}))
        configs.append((config, lambda c: setup_resnet(components, c, 64)))
    ratios = {config.name: run_config(components, config, make(config))
              for config, make in configs}
    report_load("at end", args.threads)
    print("\nsummary: " + ", ".join(f"{name} ratio {ratio:.3f}" for name, ratio in ratios.items())
          + f" (target <= {TARGET_RATIO}); total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
