"""One seed for every RNG a plugin may use (Python, NumPy, torch): ART draws from NumPy."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _cuda(device: torch.device | None) -> list[torch.device]:
    return [device] if device is not None and device.type == "cuda" else []


@contextmanager
def preserved_rng(device: torch.device | None = None) -> Iterator[None]:
    """Run a side computation (a validation probe, a toolkit that reseeds torch) without moving
    any RNG stream, so training draws the same random numbers whether or not it is probed —
    and after a resume. Given a CUDA ``device``, its stream is kept too (attacks there draw
    their random starts from it)."""
    python, numpy = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=_cuda(device)):
            yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)


def rng_state(device: torch.device | None = None) -> dict[str, Any]:
    state = {"random": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    for cuda in _cuda(device):
        state["cuda"] = torch.cuda.get_rng_state(cuda)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device | None = None) -> None:
    """Restore ``rng_state``; tensors may come back on the device a checkpoint was mapped to."""
    random.setstate(state["random"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    for cuda in _cuda(device):
        if "cuda" in state:
            torch.cuda.set_rng_state(state["cuda"].cpu(), cuda)
