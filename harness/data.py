"""Batches for training and evaluation: tensors held on the device, or a DataLoader otherwise.

A streamed dataset held on the device draws its epochs exactly as its DataLoader did, so
whether it fits (``HARNESS_DEVICE_DATA_BYTES``) never changes a result, only its speed.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from harness.devices import device_data_bytes, pin_memory


def as_tensors(dataset: Dataset, limit: int | None = None, batch_size: int = 1024
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``limit`` examples as (x, y) tensors; a TensorDataset is sliced, not copied."""
    n = len(dataset) if limit is None else min(limit, len(dataset))
    if isinstance(dataset, TensorDataset):
        x, y = dataset.tensors[:2]
        return x[:n], y[:n]
    loader = DataLoader(Subset(dataset, range(n)), batch_size=batch_size, shuffle=False)
    xs, ys = zip(*loader, strict=True) if n else ((), ())
    return torch.cat(xs), torch.cat(ys)


class HeldDataset(TensorDataset):
    """A streamed dataset held on the device as tensors (``to_device``): its epochs still come
    from a shuffling DataLoader, over indices, so the generator is drawn from as before."""


def batch_indices(dataset: TensorDataset, batch_size: int, generator: torch.Generator
                  ) -> Iterator[torch.Tensor]:
    """A tensor dataset's shuffled epoch as CPU index batches, drawn lazily from ``generator``
    (a held dataset's as its DataLoader drew them)."""
    if isinstance(dataset, HeldDataset):
        yield from DataLoader(range(len(dataset)), batch_size=batch_size, shuffle=True,
                              generator=generator)
    else:
        yield from torch.randperm(len(dataset), generator=generator).split(batch_size)


def train_batches(dataset: Dataset, batch_size: int, device: torch.device,
                  generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of shuffled batches on ``device``; tensor datasets never leave it."""
    if isinstance(dataset, TensorDataset):
        x, y = dataset.tensors[:2]
        for idx in batch_indices(dataset, batch_size, generator):
            idx = idx.to(x.device)
            yield x[idx], y[idx]
        return
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator,
                        pin_memory=pin_memory(device), num_workers=0)
    for x, y in loader:
        yield (x.to(device, non_blocking=True), y.to(device, non_blocking=True))


def to_device(dataset: Dataset, device: torch.device, max_bytes: int | None = None) -> Dataset:
    """The training set as tensors on the device when its inputs fit in ``max_bytes`` (default
    ``device_data_bytes()``): no DataLoader, no per-batch copies, augmentation on the device.

    A dataset's transforms then run once, at load: the built-in ones are deterministic
    (random augmentation is the recipe's ``augment``, done on batches).
    """
    if isinstance(dataset, TensorDataset):
        return type(dataset)(*(t.to(device) for t in dataset.tensors))
    limit = device_data_bytes() if max_bytes is None else max_bytes
    if len(dataset) == 0 or _size_in_bytes(dataset) > limit:  # type: ignore[arg-type]
        return dataset
    x, y = as_tensors(dataset)
    return HeldDataset(x.to(device), y.to(device))


def _size_in_bytes(dataset: Dataset) -> int:
    """The dataset's inputs as tensors, estimated from its first example."""
    x = torch.as_tensor(dataset[0][0])
    return len(dataset) * x.numel() * x.element_size()  # type: ignore[arg-type]
