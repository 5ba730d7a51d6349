"""Benchmark: AutoAugment done ahead of training in worker processes vs in the training loop.

One training epoch with ``augment = "autoaugment"`` (torchvision's CIFAR-10 policy, per
image) on synthetic CIFAR-shaped data (3×32×32, 10 classes), three ways. The model is a small
CNN under standard training, whose step on one CPU thread takes about what a PGD-10 ResNet-18
step takes on a GPU: about as long as AutoAugment needs for the batch on one core (a PGD epoch
on this CPU spends 1% of its time augmenting, which shows nothing).

*synchronous*: ``HARNESS_AUGMENT_WORKERS=0`` (the CPU default): each batch is augmented in the
training loop, which waits for it.

*ahead*: ``HARNESS_AUGMENT_WORKERS=N`` (CUDA's default is up to 4): worker processes augment
the next batches while the loop trains on this one.

*no augmentation*: the same epoch with ``augment = "crop-flip"``, the floor both approach.

Synchronous and ahead start from the same weights and must end with bit-identical ones (the
script checks). On a GPU the training step leaves the CPU idle, so the workers hide the
augmentation completely; on this CPU, training on one torch thread leaves one core for one
worker. Run ``.venv/bin/python benchmarks/augment.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

import torch
from common import interleave, report_load
from training import Restart, trainer_for

from harness.train import Trainer

DATASET = ('{ name = "synthetic", params = { train_size = 2048, test_size = 16, channels = 3, '
           'size = 32, num_classes = 10 } }')
ARCHITECTURE = '{ name = "small-cnn", params = { channels = 16, hidden = 64 } }'
RECIPE = '{ name = "st", defense = "standard", epochs = 1, batch_size = 128, lr = 0.05 }'


def trainer_with(workers: int, augment: str) -> Trainer:
    os.environ["HARNESS_AUGMENT_WORKERS"] = str(workers)
    trainer, _, _ = trainer_for(ARCHITECTURE, RECIPE, f'augment = "{augment}"', DATASET)
    return trainer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    synchronous = trainer_with(0, "autoaugment")
    ahead = trainer_with(args.workers, "autoaugment")
    plain = trainer_with(0, "crop-flip")
    for trainer in (ahead, plain):
        trainer.model.load_state_dict(synchronous.model.state_dict())
    restarts = {name: Restart(trainer) for name, trainer in
                (("synchronous", synchronous), (f"ahead ({args.workers} worker(s))", ahead),
                 ("no augmentation", plain))}
    methods: dict[str, Callable[[], object]] = {
        name: (lambda restart=restart: restart().run_epoch()) for name, restart in restarts.items()}
    for method in methods.values():  # warm-up: torchvision import, allocator, oneDNN
        method()
    print(report_load("at start", args.threads))
    runs = interleave(methods, args.repeats)
    print(f"one training epoch with AutoAugment, small CNN on synthetic 3x32x32 "
          f"({len(synchronous.train_set)} examples, batch 128), {torch.get_num_threads()} torch "
          f"thread(s), {args.repeats} interleaved repeats, wall time:")
    print(runs.table())
    names = list(methods)
    best, paired = runs.ratio(names[0], names[1])
    print(f"synchronous / ahead       = {best:.3f} (paired median {paired:.3f})")
    floor, _ = runs.ratio(names[1], names[2])
    share = 1 - runs.best(names[2]) / runs.best(names[0])
    print(f"ahead / no augmentation   = {floor:.3f}; AutoAugment is {100 * share:.0f}% of the "
          "synchronous epoch")
    same = all(torch.equal(a, b) for a, b in zip(synchronous.model.parameters(),
                                                 ahead.model.parameters(), strict=True))
    print(f"synchronous and ahead end with bit-identical weights: {'yes' if same else 'NO'}")
    print(report_load("at end", args.threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
