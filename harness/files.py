"""File identity: the sha256 of files that can change a result, read once per file version.

A params field typed ``harness.LocalFile`` names a file a component reads (weights, an exported
activation); its digest goes into the cell hash, so a changed file is a new cell, never a stale
stored result.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import get_args

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from harness.contracts import LOCAL_FILE


def file_sha256(path: Path) -> str:
    """The file's sha256, cached per (absolute path, mtime, size): a plan resolves a component
    several times, and a run checks the same checkpoint for many cells."""
    stat = path.stat()
    return _sha256(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def local_file_fields(model: type[BaseModel]) -> list[str]:
    """The names of a params model's ``LocalFile`` fields."""
    return [name for name, field in model.model_fields.items() if _is_local_file(field)]


def local_file_digests(params: BaseModel) -> tuple[tuple[str, str], ...]:
    """(field, sha256) of the file each set ``LocalFile`` field names. A missing file is left
    to the component's own check, which says where the file should come from."""
    paths = [(name, Path(getattr(params, name)).expanduser())
             for name in local_file_fields(type(params)) if getattr(params, name) is not None]
    return tuple((name, file_sha256(path)) for name, path in paths if path.is_file())


def _is_local_file(field: FieldInfo) -> bool:
    """``x: LocalFile`` keeps the mark on the field; ``x: LocalFile | None`` inside the union."""
    return LOCAL_FILE in field.metadata or any(
        LOCAL_FILE in getattr(arg, "__metadata__", ()) for arg in get_args(field.annotation))
