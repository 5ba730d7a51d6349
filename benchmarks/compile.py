"""Benchmark: is ``compile = true`` faster end to end for a normal cell on this machine?

For the quickstart's PGD-AT cell (``pgd-at-linf-0.1-digits``: PGD-5 linf 0.1, 8 epochs, batch
64) on the small CNN and on ResNet-18 at width 16, both on digits:

* *compile*: the seconds torch.compile spends (torch's own timers) in the compiled trainer's
  first epoch (and one eval-mode forward) and in the compiled evaluation's first attack, with
  an empty inductor cache (what a first run pays; ``--warm-cache`` keeps earlier runs' cache);
* *epoch*: eager and compiled training epochs after that, interleaved (minimum and paired
  ratio);
* *evaluation*: PGD-20 linf 0.1 on the 360 test examples, eager vs compiled, interleaved;
* *tolerance*: the logits of one batch at the same weights, the first epoch's loss from the
  same start (next to an eager epoch whose weights were perturbed by 1e-7, which shows how
  much rounding-sized differences move a training run), and the evaluation's per-example
  agreement on one model;
* *end to end*: compile + 8 epochs + one evaluation, eager vs compiled.

Run ``.venv/bin/python benchmarks/compile.py`` (5-10 minutes on 2 cores: most of it compiling).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import torch
from common import interleave, report_load
from training import Restart, trainer_for

from harness.build import build_attack
from harness.devices import compile_seconds
from harness.evaluate import clean_correct, run_attack
from harness.resolve import resolve_attacks
from harness.specs import AttackRef, Speed
from harness.tomlfile import Where

CELLS = {"small-cnn": "small-cnn-digits", "resnet18-w16": "resnet18-digits"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved epochs per method")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--arch", choices=list(CELLS), action="append",
                        help="repeatable (default: both)")
    parser.add_argument("--warm-cache", action="store_true",
                        help="keep inductor's on-disk cache (default: an empty one, as a first "
                             "run sees)")
    args = parser.parse_args(argv)
    if not args.warm_cache:  # read by inductor when it first compiles
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-cold-")
    torch.set_num_threads(args.threads)
    print(report_load("at start", args.threads))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), inductor cache "
          f"{'warm (earlier runs)' if args.warm_cache else 'empty'}")
    for arch in args.arch or list(CELLS):
        measure(arch, CELLS[arch], args.repeats)
    print(report_load("at end", args.threads))
    return 0


def measure(arch: str, preset: str, repeats: int) -> None:
    recipe = "pgd-at-linf-0.1-digits"
    eager, components, data = trainer_for(f'"{preset}"', recipe)
    compiled, _, _ = trainer_for(f'"{preset}"', recipe, "compile = true")
    compiled.model.load_state_dict(eager.model.state_dict())
    epochs = eager.recipe.epochs
    again_eager, again_compiled = Restart(eager), Restart(compiled)

    before = compile_seconds()
    x0, _ = next(again_eager().batches())
    with torch.no_grad():  # one forward at the same weights: the numerics themselves
        first_gap = float((eager.model.eval()(x0) - compiled.net.eval()(x0)).abs().max())
    loss_eager = again_eager().run_epoch()
    loss_compiled = again_compiled().run_epoch()
    compile_train = compile_seconds() - before
    perturbed = again_eager()
    with torch.no_grad():  # how far rounding-sized noise alone moves a whole epoch
        for p in perturbed.model.parameters():
            p.mul_(1 + 1e-7 * torch.randn_like(p))
    loss_perturbed = perturbed.run_epoch()
    runs = interleave({"eager epoch": lambda: again_eager().run_epoch(),
                       "compiled epoch": lambda: again_compiled().run_epoch()}, repeats)

    [resolved] = resolve_attacks(components, AttackRef(name="pgd20-linf-0.1"), Where("bench"))
    attack = build_attack(components, resolved)
    x, y = data.test.tensors  # type: ignore[attr-defined]
    model = eager.model.eval()
    correct = clean_correct(model, x, y, 360)

    def evaluate(speed: Speed):
        return run_attack(model, attack, x, y, correct, 360, 0, speed)

    first = evaluate(Speed(compile=True))
    compile_eval = first.compile_seconds
    reference = evaluate(Speed())
    evals = interleave({"eager evaluation": lambda: evaluate(Speed()),
                        "compiled evaluation": lambda: evaluate(Speed(compile=True))}, repeats)
    agree = float((first.robust == reference.robust).float().mean())
    epoch_e, epoch_c = runs.best("eager epoch"), runs.best("compiled epoch")
    eval_e, eval_c = evals.best("eager evaluation"), evals.best("compiled evaluation")
    total_e = epochs * epoch_e + eval_e
    total_c = compile_train + epochs * epoch_c + compile_eval + eval_c
    print(f"\n== {arch} ({preset}), cell pgd-at-linf-0.1-digits ({epochs} epochs), "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params")
    print(runs.table())
    print(evals.table())
    print(f"  compile: {compile_train:.1f} s in training (first epoch), {compile_eval:.1f} s "
          "in evaluation (first attack)")
    print(f"  compiled / eager: epoch {runs.ratio('compiled epoch', 'eager epoch')[0]:.3f} "
          f"(paired {runs.ratio('compiled epoch', 'eager epoch')[1]:.3f}), evaluation "
          f"{evals.ratio('compiled evaluation', 'eager evaluation')[0]:.3f} (paired "
          f"{evals.ratio('compiled evaluation', 'eager evaluation')[1]:.3f})")
    print(f"  tolerance: logits at the same weights differ by up to {first_gap:.1e}; first-epoch "
          f"loss {loss_eager:.6f} eager, {loss_compiled:.6f} compiled, {loss_perturbed:.6f} "
          "eager with the weights perturbed by 1e-7 (relative: training's own sensitivity); "
          f"evaluation of one model: robust {reference.accuracy:.4f} eager, "
          f"{first.accuracy:.4f} compiled, {100 * agree:.1f}% of examples agree")
    print(f"  end to end (compile + {epochs} epochs + evaluation): eager {total_e:.1f} s, "
          f"compiled {total_c:.1f} s -> compile is "
          f"{'FASTER' if total_c < total_e else 'slower'} here ({total_c / total_e:.2f}x)")


if __name__ == "__main__":
    sys.exit(main())
