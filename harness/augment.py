"""Training augmentation on batches already on the device: crop+flip without a DataLoader.

AutoAugment (torchvision's CIFAR-10 or ImageNet policy) runs per image on uint8 tensors on the
CPU: it is the generalization study's recipe (CIFAR-10 and Imagenette), and 20-40 ms per
128 CIFAR images on one core, so on a GPU ``AheadAutoAugment`` does it in worker processes for
the next batches while the device trains on this one, with the same result.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

import torch

from harness.seeding import preserved_rng

#: augment kind → torchvision AutoAugmentPolicy name
POLICIES = {"autoaugment": "CIFAR10", "autoaugment-imagenet": "IMAGENET"}


@dataclass(frozen=True)
class CropFlip:
    """One batch's crop offsets and flips, drawn apart from the images they apply to, so the
    draws can be made in order while the images are still being augmented elsewhere."""

    padding: int
    dy: torch.Tensor | None
    dx: torch.Tensor | None
    flip: torch.Tensor

    @classmethod
    def draw(cls, n: int, padding: int, generator: torch.Generator) -> CropFlip:
        dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator) if padding else None
        dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator) if padding else None
        return cls(padding, dy, dx, torch.rand(n, generator=generator) < 0.5)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Random crop after zero padding, and a random horizontal flip, per example."""
        n, _, h, w = x.shape
        if self.dy is not None and self.dx is not None:
            padded = torch.nn.functional.pad(x, (self.padding,) * 4)
            dy, dx = self.dy.to(x.device), self.dx.to(x.device)
            rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
            cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
            batch = torch.arange(n, device=x.device)[:, None, None, None]
            channels = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
            x = padded[batch, channels, rows, cols]
        flip = self.flip.to(x.device)
        return torch.where(flip[:, None, None, None], x.flip(-1), x)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255).round().to(torch.uint8)


def draw_seed(generator: torch.Generator) -> int:
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator))


def autoaugment_images(images: torch.Tensor, seed: int, policy_name: str) -> torch.Tensor:
    """uint8 images through torchvision's AutoAugment, one policy draw per image. torchvision
    draws from the global RNG: seeded with ``seed``, the output is the same in any process."""
    from torchvision.transforms import v2

    policy = v2.AutoAugment(getattr(v2.AutoAugmentPolicy, policy_name))
    torch.manual_seed(seed)
    return torch.stack([policy(image) for image in images])


def autoaugment(x: torch.Tensor, generator: torch.Generator, policy_name: str = "CIFAR10"
                ) -> torch.Tensor:
    """torchvision's AutoAugment with its CIFAR10 or IMAGENET policy, per image."""
    seed = draw_seed(generator)
    with preserved_rng():  # manual_seed reseeds every device's stream, not only the CPU's
        images = autoaugment_images(to_uint8(x).cpu(), seed, policy_name)
    return images.to(x.device, x.dtype) / 255


def augment(x: torch.Tensor, kind: str, padding: int, generator: torch.Generator) -> torch.Tensor:
    if kind == "none":
        return x
    if kind in POLICIES:
        x = autoaugment(x, generator, POLICIES[kind])
    return CropFlip.draw(len(x), padding, generator).apply(x)


_IMAGES: torch.Tensor | None = None  # a worker's (forked) view of the training images


def _start_worker(images: torch.Tensor) -> None:
    global _IMAGES
    _IMAGES = images
    torch.set_num_threads(1)  # forked from a process whose OpenMP pool it cannot use
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the run, not each worker


def _autoaugment_batch(idx: torch.Tensor, seed: int, policy_name: str) -> torch.Tensor:
    assert _IMAGES is not None
    return autoaugment_images(_IMAGES[idx], seed, policy_name)


class AheadAutoAugment:
    """``augment`` for AutoAugment recipes, done ``workers`` processes ahead of training.

    Every draw from the training generator (the epoch order, each batch's AutoAugment seed and
    crop-flip) is made in the main process in the order ``augment`` makes it, and training
    itself never draws from that generator, so running ahead changes no batch: only the
    per-image work moves to the workers, which index a uint8 copy of the training images
    made once (no device-to-host copy per batch).
    """

    def __init__(self, images: torch.Tensor, kind: str, padding: int, workers: int) -> None:
        self.images = to_uint8(images).cpu()
        self.policy, self.padding, self.workers = POLICIES[kind], padding, workers

    def batches(self, indices: Iterator[torch.Tensor], labels: torch.Tensor,
                generator: torch.Generator, device: torch.device, dtype: torch.dtype
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        pending: deque[tuple[Future[torch.Tensor], CropFlip, torch.Tensor]] = deque()
        with ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("fork"),
                                 initializer=_start_worker, initargs=(self.images,)) as pool:
            for idx in indices:
                job = pool.submit(_autoaugment_batch, idx, draw_seed(generator), self.policy)
                pending.append((job, CropFlip.draw(len(idx), self.padding, generator),
                                labels[idx.to(labels.device)]))
                if len(pending) > 2 * self.workers:
                    yield self._finish(*pending.popleft(), device, dtype)
            while pending:
                yield self._finish(*pending.popleft(), device, dtype)

    @staticmethod
    def _finish(job: Future[torch.Tensor], crop_flip: CropFlip, labels: torch.Tensor,
                device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        return crop_flip.apply(job.result().to(device, dtype) / 255), labels
