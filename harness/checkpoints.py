"""Checkpoint files: written atomically (a kill never leaves half a file), named by cell hash."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_file, save_model
from torch import nn


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Write to a temporary file beside ``path`` and rename: a kill never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(model: nn.Module, path: Path) -> None:
    atomic_write(path, lambda tmp: save_model(model, str(tmp)))


def save_state_dict(state: dict[str, torch.Tensor], path: Path) -> None:
    atomic_write(path, lambda tmp: save_file({k: v.contiguous() for k, v in state.items()},
                                             str(tmp)))


def load_checkpoint(model: nn.Module, path: Path) -> nn.Module:
    load_model(model, str(path), device=str(next(model.parameters()).device))
    model.eval()
    return model
