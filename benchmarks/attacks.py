"""Benchmark: each attack backend through the harness vs the plain toolkit call.

For a fixed small CNN trained briefly on digits and its clean-correct test examples, time
PGD-10 (linf 0.1) through the harness (``build_attack`` + ``run_attack``: guard, budget check,
per-example outcomes) against the same attack called directly — torchattacks.PGD, ART's
ProjectedGradientDescentPyTorch, each followed by the robust-accuracy forward any evaluation
needs — and AutoAttack (custom APGD-CE, 10 iterations) against
``pyautoattack.AutoAttack`` called directly. Methods are interleaved and the minimum over
repeats is compared; target ratio <= 1.05 everywhere.

Run ``.venv/bin/python benchmarks/attacks.py`` (a minute or two on 2 cores).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from harness.build import build_attack
from harness.cells import Resolved
from harness.evaluate import clean_correct, run_attack
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
    from pyautoattack import AutoAttack
    from pyautoattack.autopgd_base import APGDAttack

    aa = AutoAttack(model, norm="Linf", eps=EPS, version="custom", attacks=["apgd-ce"],
                    seed=0, device="cpu")
    aa.apgd = APGDAttack(model, n_iter=STEPS, n_restarts=1, eps=EPS, norm="Linf", seed=0,
                         device="cpu", logger=aa.logger)
    return robust(model, aa.run_standard_evaluation(x, y, batch_size=512)[0], y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15,
                        help="timed calls per method; the minimum is compared (default 15)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch intra-op threads; 1 is steadier on a shared machine")
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
    print(f"{len(y)} clean-correct digits examples, small-cnn, linf {EPS}, "
          f"{torch.get_num_threads()} threads, min of {args.repeats}:")
    for name, (ours, direct) in pairs.items():
        best = {"harness": float("inf"), "direct": float("inf")}
        for repeat in range(args.repeats):
            order = [("harness", ours), ("direct", direct)]
            for label, call in order if repeat % 2 == 0 else reversed(order):
                started = time.perf_counter()
                call(model, x, y)
                best[label] = min(best[label], time.perf_counter() - started)
        print(f"  {name:24} harness {best['harness']:.3f} s  direct {best['direct']:.3f} s  "
              f"ratio {best['harness'] / best['direct']:.3f}  (target <= 1.05)")


if __name__ == "__main__":
    main()
