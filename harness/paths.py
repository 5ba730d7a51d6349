"""Where the built-in plugin, catalogue and suite folders live (source checkout or wheel)."""

from __future__ import annotations

from pathlib import Path

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
