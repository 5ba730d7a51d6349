"""An index of what loading the plugins registers, so ``harness list`` and ``harness plugins``
answer without importing torch or any plugin (as lm-evaluation-harness indexes its tasks).

Loading every plugin imports torch and each plugin module: over a second before anything is
printed. The index keeps what those commands print, under a fingerprint of everything that can
change it: the harness version, the ``HARNESS_*`` environment, the command's blocked names,
catalogue files and plugin folders, and the size and modification time of every file in the
built-in plugin and catalogue folders, the engine itself, the extra plugin folders and each
installed entry point's package (with its distribution's version). Any change is a miss: the
command loads everything as before and writes a new index. Nothing here imports a plugin.

The index lives in ``$HARNESS_CACHE/listing`` (the user cache folder by default, as
downloaded weights do); writing it is best-effort (a read-only cache only costs the speed).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import platformdirs

from harness import paths
from harness.version import __version__

KEPT = 16  # indexes kept: one per combination of plugin folders, catalogues and blocks in use


def fingerprint(plugin_dirs: Iterable[Path], catalogue_files: Iterable[Path],
                blocked: Iterable[str]) -> str:
    parts: list[Any] = [
        __version__, sys.version, sorted(blocked),
        sorted((k, v) for k, v in os.environ.items() if k.startswith("HARNESS_")),
        [_files(folder) for folder in (paths.builtin_plugins_dir(),
                                       paths.builtin_registries_dir(), Path(__file__).parent)],
        [_files(Path(p).resolve()) for p in plugin_dirs],
        [_files(Path(p).resolve()) for p in catalogue_files],
        [_entry_point(ep) for ep in sorted(
            importlib.metadata.entry_points(group=paths.ENTRY_POINT_GROUP), key=lambda e: e.name)],
    ]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:24]


def _files(path: Path) -> list[Any]:
    """(name, size, mtime) of a file, or of every file under a folder (bytecode aside)."""
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix != ".pyc")
    else:
        return [str(path), "missing"]
    return [(str(f), (stat := f.stat()).st_size, stat.st_mtime_ns) for f in files]


def _entry_point(ep: importlib.metadata.EntryPoint) -> list[Any]:
    """An installed plugin: its name, target, distribution version and its package's files
    (an editable install changes without a new version). Finding a top-level module's files
    does not import it."""
    dist = ep.dist
    top = ep.value.split(":")[0].split(".")[0].strip()
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        spec = None
    where: list[Any] = []
    if spec is not None and spec.submodule_search_locations:
        where = [_files(Path(p)) for p in spec.submodule_search_locations]
    elif spec is not None and spec.origin:
        where = _files(Path(spec.origin))
    return [ep.name, ep.value, dist.name if dist else None, dist.version if dist else None, where]


def cache_dir() -> Path:
    """``$HARNESS_CACHE/listing``, else the platform's user cache (as ``harness.weights``)."""
    root = os.environ.get("HARNESS_CACHE") or platformdirs.user_cache_dir("robust-harness")
    return Path(root) / "listing"


def load(key: str) -> dict[str, Any] | None:
    try:
        return json.loads((cache_dir() / f"listing-{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def save(key: str, index: dict[str, Any]) -> None:
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"listing-{key}.json.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(index), encoding="utf-8")
        tmp.replace(folder / f"listing-{key}.json")
        old = sorted(folder.glob("listing-*.json"), key=lambda f: f.stat().st_mtime)[:-KEPT]
        for stale in old:
            stale.unlink(missing_ok=True)
    except OSError:
        pass
