"""Device choice (CUDA, then MPS, then CPU) and the few CUDA-only speed settings."""

from __future__ import annotations

import torch

from harness.errors import UserError


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


def pin_memory(device: torch.device) -> bool:
    """Pinned host memory only speeds up copies to a CUDA device."""
    return device.type == "cuda"


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type
