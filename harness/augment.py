"""Training augmentation on batches already on the device: crop+flip without a DataLoader.

AutoAugment (torchvision's CIFAR-10 or ImageNet policy) runs per image on uint8 tensors: slower,
but it is the generalization study's recipe (CIFAR-10 and Imagenette).
"""

from __future__ import annotations

import torch

from harness.seeding import preserved_rng


def crop_flip(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Random crop after zero padding, and a random horizontal flip, per example."""
    n, _, h, w = x.shape
    if padding:
        padded = torch.nn.functional.pad(x, (padding,) * 4)
        dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
        dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        channels = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        x = padded[batch, channels, rows, cols]
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def autoaugment(x: torch.Tensor, generator: torch.Generator, policy_name: str = "CIFAR10"
                ) -> torch.Tensor:
    """torchvision's AutoAugment with its CIFAR10 or IMAGENET policy, per image."""
    from torchvision.transforms import v2

    policy = v2.AutoAugment(getattr(v2.AutoAugmentPolicy, policy_name))
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    with preserved_rng():  # manual_seed reseeds every device's stream, not only the CPU's
        torch.manual_seed(seed)  # torchvision draws from the global RNG: keep ours reproducible
        images = (x * 255).round().to(torch.uint8).cpu()
        out = torch.stack([policy(image) for image in images])
    return out.to(x.device, x.dtype) / 255


def augment(x: torch.Tensor, kind: str, padding: int, generator: torch.Generator) -> torch.Tensor:
    if kind == "none":
        return x
    if kind == "autoaugment":
        x = autoaugment(x, generator)
    elif kind == "autoaugment-imagenet":
        x = autoaugment(x, generator, "IMAGENET")
    return crop_flip(x, padding, generator)
