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


def _accelerator(device: torch.device | str | None) -> torch.device | None:
    device = torch.device(device) if device is not None else None
    return device if device is not None and device.type != "cpu" else None


@contextmanager
def preserved_rng(device: torch.device | str | None = None) -> Iterator[None]:
    """Run a side computation (a validation probe, a toolkit that reseeds torch) without moving
    any RNG stream, so training draws the same random numbers whether or not it is probed —
    and after a resume. Python's, NumPy's and torch's CPU streams are kept, and those of
    ``device`` if it is an accelerator (attacks there draw their random starts from it); with
    no device, those of every device of the current accelerator."""
    python, numpy = random.getstate(), np.random.get_state()
    if device is None:
        fork = torch.random.fork_rng()
    else:
        accelerator = _accelerator(device)
        fork = torch.random.fork_rng(devices=[accelerator] if accelerator else [],
                                     device_type=accelerator.type if accelerator else None)
    try:
        with fork:
            yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)


def rng_state(device: torch.device | str | None = None) -> dict[str, Any]:
    state = {"random": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    accelerator = _accelerator(device)
    if accelerator is not None:
        state[accelerator.type] = torch.get_device_module(accelerator).get_rng_state(accelerator)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device | str | None = None) -> None:
    """Restore ``rng_state``; tensors may come back on the device a checkpoint was mapped to."""
    random.setstate(state["random"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    accelerator = _accelerator(device)
    if accelerator is not None and accelerator.type in state:
        torch.get_device_module(accelerator).set_rng_state(state[accelerator.type].cpu(),
                                                           accelerator)
