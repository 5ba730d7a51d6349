"""Checkpoint files: written atomically with their sha256 beside them, verified before use.

Every file goes to a temporary name first and is renamed into place, so a kill never leaves
half a file; its digest is written to ``<file>.sha256`` just before the rename. A file whose
bytes no longer match (truncated, flipped, replaced) or that is missing is never loaded: the
caller recomputes what depended on it. Training state keeps two generations (this epoch's and
the one before), so a damaged or half-written newest state costs one epoch, not the cell.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_file, save_model
from torch import nn

from harness.errors import UserError
from harness.files import file_sha256

#: errno values that mean the machine, not the run, is at fault: stop and say so.
STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT}


class StorageError(UserError):
    """The output folder cannot be written (full disk, read-only, no permission, locked):
    one line saying what and where; every finished cell is already safe."""


class DamagedFile(RuntimeError):
    """A checkpoint whose bytes do not match its recorded sha256, or that is missing."""


def digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def atomic_write(path: Path, write: Callable[[Path], Any]) -> str:
    """Write through a temporary file, record its sha256 beside it, rename it into place;
    returns the digest. A failed write leaves the previous file (if any) untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb") as file:
            digest = hashlib.file_digest(file, "sha256").hexdigest()
        sidecar = digest_path(tmp)
        sidecar.write_text(digest + "\n", encoding="ascii")
        os.replace(sidecar, digest_path(path))
        os.replace(tmp, path)
    except OSError as error:
        for leftover in (tmp, digest_path(tmp)):
            leftover.unlink(missing_ok=True)
        raise storage_error(error, path) from None
    return digest


def previous_generation(path: Path) -> Path:
    """Where the version of ``path`` before the newest is kept (``x.state.previous.pt``)."""
    return path.with_suffix(".previous" + path.suffix)


def _move(source: Path, target: Path) -> None:
    """``source`` and its recorded digest renamed to ``target`` (a stale digest never stays
    beside the moved file: a missing one reads as untrusted, a wrong one as damaged)."""
    try:
        digest_path(target).unlink(missing_ok=True)
        if digest_path(source).exists():
            os.replace(digest_path(source), digest_path(target))
        os.replace(source, target)
    except OSError as error:
        raise storage_error(error, target) from None


def keep_previous(path: Path) -> None:
    """Before ``path`` is rewritten: move it aside as its previous generation."""
    if path.exists():
        _move(path, previous_generation(path))


def newest_intact(path: Path) -> tuple[str | None, bool]:
    """Make ``path`` the newest intact generation of itself. Returns (what was wrong with the
    newest one, or None; whether an intact one is now at ``path``). A damaged or missing newest
    generation is replaced by the previous one when that is intact; otherwise both are
    deleted."""
    previous = previous_generation(path)
    problem = file_problem(path) if path.exists() else ("is missing" if previous.exists()
                                                        else None)
    if problem is None:
        return None, path.exists()
    if previous.exists() and file_problem(previous) is None:
        _move(previous, path)
        return problem, True
    for leftover in (path, previous):
        for file in (leftover, digest_path(leftover)):
            file.unlink(missing_ok=True)
    return problem, False


def storage_error(error: OSError, path: Path) -> OSError | StorageError:
    """A full disk or a read-only folder as one clear line; other OS errors stay as they are."""
    if error.errno not in STORAGE_ERRNOS:
        return error
    return StorageError(f"cannot write {path}: {os.strerror(error.errno)}; free space or fix "
                        "the folder's permissions and run again (finished cells are kept)")


def recorded_digest(path: Path) -> str | None:
    try:
        return digest_path(path).read_text(encoding="ascii").strip() or None
    except FileNotFoundError:
        return None


def file_problem(path: Path, expected: str | None = None) -> str | None:
    """Why ``path`` cannot be trusted (missing, no recorded digest, damaged), or None.
    ``expected`` is the digest the database recorded; else the one beside the file."""
    if not path.is_file():
        return "is missing"
    recorded = expected or recorded_digest(path)
    if recorded is None:
        return "has no recorded sha256"
    actual = file_sha256(path)
    if actual != recorded:
        return f"is damaged (sha256 {actual[:12]}…, recorded {recorded[:12]}…)"
    return None


def save_checkpoint(model: nn.Module, path: Path) -> str:
    return atomic_write(path, lambda tmp: save_model(model, str(tmp)))


def save_state_dict(state: dict[str, torch.Tensor], path: Path) -> str:
    return atomic_write(path, lambda tmp: save_file({k: v.contiguous() for k, v in state.items()},
                                                    str(tmp)))


def load_checkpoint(model: nn.Module, path: Path, expected: str | None = None) -> nn.Module:
    """The weights into ``model`` (eval mode), after checking the file's sha256."""
    problem = file_problem(path, expected)
    if problem is not None:
        raise DamagedFile(f"checkpoint {path} {problem}")
    load_model(model, str(path), device=str(next(model.parameters()).device))
    model.eval()
    return model
