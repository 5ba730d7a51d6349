"""Device choice (CUDA, then MPS, then CPU) and the speed settings a cell resolves to.

The settings are applied wherever a cell says so (on CPU too: bf16 autocast and compile run
there, which is how the tests exercise the CUDA paths); the plan decides where they are on.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn

from harness.errors import UserError

#: Training sets up to this many bytes (their input tensors) are held whole on the device.
DEVICE_DATA_BYTES = 4 * 2**30


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks the best available device; an explicit one that is absent is a user error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} requested but CUDA is not available; use device = \"auto\"")
    if device.type == "cuda" and device.index is not None and \
            device.index >= torch.cuda.device_count():
        raise UserError(f"device {name!r} does not exist ({torch.cuda.device_count()} CUDA devices)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device {name!r} requested but MPS is not available; use device = \"auto\"")
    return device


def planned_device_type(name: str) -> str:
    """The device type a run's cells are planned (and hashed) for: ``resolve_device``'s, except
    that an explicit CUDA request plans for CUDA even in a process that sees no GPU (a Ray
    driver whose workers have them)."""
    return "cuda" if name.startswith("cuda") else resolve_device(name).type


def pin_memory(device: torch.device) -> bool:
    """Pinned host memory only speeds up copies to a CUDA device."""
    return device.type == "cuda"


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def device_data_bytes() -> int:
    """The size limit for device-resident datasets: ``HARNESS_DEVICE_DATA_BYTES`` or 4 GiB."""
    value = os.environ.get("HARNESS_DEVICE_DATA_BYTES", "")
    try:
        return int(value) if value else DEVICE_DATA_BYTES
    except ValueError:
        raise UserError(f"HARNESS_DEVICE_DATA_BYTES={value!r} is not a number of bytes") from None


def augment_workers(device: torch.device) -> int:
    """Processes that run AutoAugment ahead of training: ``HARNESS_AUGMENT_WORKERS``, else on
    CUDA up to 4 of the CPUs beside the one driving the GPU, else none (a CPU run's training
    already uses every core)."""
    value = os.environ.get("HARNESS_AUGMENT_WORKERS", "")
    if value:
        if not value.isdigit():
            raise UserError(f"HARNESS_AUGMENT_WORKERS={value!r} is not a number of processes")
        return int(value)
    return min(4, (os.cpu_count() or 1) - 1) if device.type == "cuda" else 0


def autocast(enabled: bool, device: torch.device) -> AbstractContextManager[Any]:
    """bf16 autocast on ``device`` when the cell runs with amp; full precision otherwise."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if enabled else nullcontext()


def channels_last(model: nn.Module) -> nn.Module:
    """The model's 4-d weights in channels_last memory, in place (the layout cuDNN prefers)."""
    return model.to(memory_format=torch.channels_last)


def compile_model(model: nn.Module) -> nn.Module:
    """``torch.compile`` of the model: the same parameters, so optimizer, EMA, checkpoints and
    the attack guard all see the uncompiled module's tensors."""
    return torch.compile(model)


def compile_seconds() -> float:
    """Seconds torch.compile has spent in this process so far (dynamo frames and the lazily
    compiled backward graphs), from torch's own timers; differences time one phase."""
    from torch._dynamo.utils import cumulative_time_spent_ns

    spent = cumulative_time_spent_ns
    return (spent.get("entire_frame_compile", 0) + spent.get("entire_backward_compile", 0)) / 1e9
