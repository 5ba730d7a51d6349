"""Where plugins, catalogues and suites come from: the built-in folders (source checkout or
wheel) and the entry-point group installed plugin packages declare."""

from __future__ import annotations

from pathlib import Path

ENTRY_POINT_GROUP = "robust_harness"

_PACKAGE = Path(__file__).resolve().parent


def _builtin(folder: str) -> Path:
    """A wheel carries the folders under ``harness/_builtin``; a checkout has them beside it."""
    packaged = _PACKAGE / "_builtin" / folder
    return packaged if packaged.is_dir() else _PACKAGE.parent / folder


def builtin_plugins_dir() -> Path:
    return _builtin("plugins")


def builtin_registries_dir() -> Path:
    return _builtin("registries")


def builtin_suites_dir() -> Path:
    return _builtin("suites")
