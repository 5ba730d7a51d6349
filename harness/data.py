"""Batches for training and evaluation: tensors held on the device, or a DataLoader otherwise."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from harness.devices import pin_memory


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


def train_batches(dataset: Dataset, batch_size: int, device: torch.device,
                  generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of shuffled batches on ``device``; small tensor datasets never leave it."""
    if isinstance(dataset, TensorDataset):
        x, y = dataset.tensors[:2]
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            yield x[idx], y[idx]
        return
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator,
                        pin_memory=pin_memory(device), num_workers=0)
    for x, y in loader:
        yield (x.to(device, non_blocking=True), y.to(device, non_blocking=True))


def to_device(dataset: Dataset, device: torch.device) -> Dataset:
    """A TensorDataset moved to the device once, so training never copies batches."""
    if isinstance(dataset, TensorDataset):
        return TensorDataset(*(t.to(device) for t in dataset.tensors))
    return dataset
