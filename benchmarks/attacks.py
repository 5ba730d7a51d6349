"""Benchmark: each attack backend through the harness vs the plain toolkit call.

For a fixed small CNN trained briefly on digits and its clean-correct test examples, time
PGD-10 (linf 0.1) through the harness (``build_attack`` + ``run_attack``: guard, budget check,
per-example outcomes) against the same attack called directly — torchattacks.PGD, ART's
ProjectedGradientDescentPyTorch, each followed by the robust-accuracy forward any evaluation
needs — and AutoAttack (custom APGD-CE, 10 iterations) against
``pyautoattack.AutoAttack`` called directly. Methods are interleaved and the minimum over
repeats is compared; target ratio <= 1.02 everywhere.

The guard's own cost is printed apart: ``GuardedAttack.run`` around an attack that returns a
precomputed batch (the copy of the input batch, the snapshot and bit-for-bit check of every
parameter and buffer, modes, frozen parameters, the float64 budget check), against the
direct PGD-10's time for the same batch.

Run ``.venv/bin/python benchmarks/attacks.py`` (a minute or two on 2 cores).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from common import interleave, report_load, verdict

from harness.build import build_attack
from harness.cells import Resolved
from harness.evaluate import clean_correct, run_attack
from harness.guard import GuardedAttack
from harness.session import load_components
from harness.threat import ThreatModel

EPS, STEPS = 0.1, 10
ALPHA = 2.5 * EPS / STEPS


def trained_digits_cnn(components) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    data_entry = components.datasets.get("digits")
    data = data_entry.factory(data_entry.make_params({}), None)
    arch = components.architectures.get("small-cnn")
    torch.manual_seed(0)
    model = arch.factory(arch.make_params({}), data.info)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = data.train.tensors
    for _ in range(3):
        for i in range(0, len(x), 64):
            optimizer.zero_grad()
            F.cross_entropy(model(x[i:i + 64]), y[i:i + 64]).backward()
            optimizer.step()
    model.eval().zero_grad(set_to_none=True)
    x_test, y_test = data.test.tensors
    correct = clean_correct(model, x_test, y_test, 512)
    return model, x_test[correct], y_test[correct]


def harness_call(components, factory: str, params: dict) -> Callable:
    entry = components.attacks.get(factory)
    resolved = Resolved("attacks", factory, factory, entry.make_params(params).model_dump(
        mode="json"), entry.plugin, entry.version, ThreatModel(norm="linf", eps=EPS))

    def run(model, x, y):
        attack = build_attack(components, resolved)
        return run_attack(model, attack, x, y, torch.ones(len(y), dtype=torch.bool), 512, 0)

    return run


@torch.no_grad()
def robust(model, x_adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The per-example outcome a hand-written evaluation needs too (one forward)."""
    return model(x_adv).argmax(1) == y


def torchattacks_direct(model, x, y):
    import torchattacks

    torch.manual_seed(0)
    return robust(model, torchattacks.PGD(model, eps=EPS, alpha=ALPHA, steps=STEPS)(x, y), y)


def art_direct(model, x, y):
    from art.attacks.evasion import ProjectedGradientDescentPyTorch
    from art.estimators.classification import PyTorchClassifier

    classifier = PyTorchClassifier(model, loss=torch.nn.CrossEntropyLoss(),
                                   input_shape=tuple(x.shape[1:]), nb_classes=10,
                                   clip_values=(0.0, 1.0), device_type="cpu")
    np.random.seed(0)
    attack = ProjectedGradientDescentPyTorch(classifier, norm=np.inf, eps=EPS, eps_step=ALPHA,
                                             max_iter=STEPS, num_random_init=1, batch_size=512,
                                             verbose=False)
    return robust(model, torch.from_numpy(attack.generate(x.numpy(), y.numpy())), y)


def autoattack_direct(model, x, y):
    from pyautoattack import AutoAttack, checks
    from pyautoattack.autopgd_base import APGDAttack

    # pyautoattack counts its checks in module globals and never resets them, so in one process
    # only the first call would check its model; reset as for a first call (the harness resets
    # them on every call: each eval cell's model is checked)
    for key in checks.funcs:
        checks.funcs[key] = 0
    aa = AutoAttack(model, norm="Linf", eps=EPS, version="custom", attacks=["apgd-ce"],
                    seed=0, device="cpu")
    aa.apgd = APGDAttack(model, n_iter=STEPS, n_restarts=1, eps=EPS, norm="Linf", seed=0,
                         device="cpu", logger=aa.logger)
    return robust(model, aa.run_standard_evaluation(x, y, batch_size=512)[0], y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15,
                        help="timed calls per method; the minimum is compared (default 15)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: steadier on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    components = load_components(autoload=False)
    model, x, y = trained_digits_cnn(components)
    pairs = {
        "torchattacks PGD-10": (harness_call(components, "pgd", {"steps": STEPS,
                                                                "step_size": ALPHA}),
                                torchattacks_direct),
        "ART PGD-10": (harness_call(components, "pgd-art", {"steps": STEPS, "step_size": ALPHA}),
                       art_direct),
        "AutoAttack APGD-CE-10": (harness_call(components, "autoattack", {
            "version": "custom", "attacks": ["apgd-ce"], "n_iter": STEPS, "n_restarts": 1}),
            autoattack_direct),
    }
    print(report_load("at start", args.threads))
    print(f"{len(y)} clean-correct digits examples, small-cnn, linf {EPS}, "
          f"{torch.get_num_threads()} thread(s), {args.repeats} interleaved repeats:")
    for name, (ours, direct) in pairs.items():
        runs = interleave({"harness": lambda ours=ours: ours(model, x, y),
                           "direct": lambda direct=direct: direct(model, x, y)}, args.repeats)
        best, paired = runs.ratio("harness", "direct")
        print(f"  {name:24} harness {runs.best('harness'):.3f} s  direct "
              f"{runs.best('direct'):.3f} s  ratio {best:.3f} (paired median {paired:.3f})  "
              f"{verdict(best, 1.02)}")
    guard_seconds, attack_seconds = guard_cost(model, x, y, args.repeats)
    print(f"  guard (copy, snapshot and check of {sum(1 for _ in model.parameters())} parameters "
          f"and {sum(1 for _ in model.buffers())} buffers, budget check): "
          f"{1e3 * guard_seconds:.2f} ms per batch of {len(y)}, "
          f"{100 * guard_seconds / attack_seconds:.2f}% of a direct PGD-{STEPS} on it")
    print(report_load("at end", args.threads))


def guard_cost(model, x, y, repeats: int) -> tuple[float, float]:
    """Seconds of GuardedAttack.run minus its attack, and of one torchattacks PGD-10 call."""
    import torchattacks

    torch.manual_seed(0)
    pgd = torchattacks.PGD(model, eps=EPS, alpha=ALPHA, steps=STEPS)
    x_adv = pgd(x, y).detach()
    fixed = GuardedAttack(lambda _m, _x, _y: x_adv, ThreatModel(norm="linf", eps=EPS))
    runs = interleave({"guard": lambda: fixed.run(model, x, y), "attack": lambda: pgd(x, y)},
                      max(repeats, 5))
    return runs.best("guard"), runs.best("attack")


if __name__ == "__main__":
    main()
