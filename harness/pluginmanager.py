"""Build the pluggy manager: built-in plugin folder, entry points, extra folders, blocks."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import inspect
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pluggy

from harness import hookspecs, paths
from harness.errors import PluginError, did_you_mean
from harness.paths import ENTRY_POINT_GROUP

ENV_DISABLE_AUTOLOAD = "HARNESS_DISABLE_PLUGIN_AUTOLOAD"
ENV_BLOCK = "HARNESS_BLOCK_PLUGINS"


@dataclass(frozen=True)
class PluginInfo:
    """Where a loaded plugin came from, for ``harness plugins`` and provenance."""

    name: str
    source: str  # "builtin", "directory" or "entry-point"
    location: str
    version: str
    hooks: tuple[str, ...]
    #: A folder plugin's code, hashed into the cells of what it provides: editing a local
    #: plugin recomputes exactly those cells. Built-ins and packages go by their version.
    source_sha256: str | None = None


def load_module_from_path(path: Path) -> ModuleType:
    """Import one plugin by path (a ``.py`` file, or a package folder with ``__init__.py``)
    under a module name unique to its folder, so two folders' ``noise.py`` never collide."""
    path = path.resolve()
    digest = hashlib.sha1(str(path.parent).encode()).hexdigest()[:8]
    module_name = f"_harness_plugin_{digest}_{path.stem}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    if path.is_dir():  # a package: its modules import each other relatively (from . import x)
        spec = importlib.util.spec_from_file_location(
            module_name, path / "__init__.py", submodule_search_locations=[str(path)])
    else:
        spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"{path}: cannot be imported as a plugin module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        for name in [n for n in sys.modules if n == module_name or
                     n.startswith(module_name + ".")]:
            del sys.modules[name]
        raise PluginError(f"{path}: plugin failed to import: {type(exc).__name__}: {exc}") from exc
    return module


def plugin_files(location: Path) -> list[Path]:
    """The plugins a location holds: a ``.py`` file or a package folder (one with an
    ``__init__.py``) is one plugin; any other folder holds every ``*.py`` and package folder
    in it whose name does not start with an underscore."""
    if (location.is_file() and location.suffix == ".py") or (location / "__init__.py").is_file():
        return [location]
    if not location.is_dir():
        what = "is not a .py file or a folder" if location.exists() else "does not exist"
        raise PluginError(
            f"plugin folder or file {location} {what}; check the path "
            "(relative paths in a suite are relative to the suite file)"
        )
    found = list(location.glob("*.py"))
    found += [p for p in location.iterdir() if (p / "__init__.py").is_file()]
    return sorted(p for p in found if not p.name.startswith("_"))


def source_sha256(path: Path) -> str:
    """The bytes of a plugin file, or of every ``.py`` file of a plugin package, with their
    relative paths (a renamed module changes the digest too)."""
    files = [path] if path.is_file() else sorted(path.rglob("*.py"))
    digest = hashlib.sha256()
    for file in files:
        digest.update(str(file.relative_to(path.parent)).encode() + b"\0")
        digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()


def hook_names() -> list[str]:
    return sorted(name for name in vars(hookspecs) if name.startswith("harness_"))


def check_hook_functions(module: ModuleType, location: str) -> None:
    """What pluggy would report with a traceback, or not at all, as one line with the fix: a
    hook whose name or arguments are not the spec's, or a hook function missing ``@hookimpl``."""
    marker = f"{hookspecs.PROJECT}_impl"
    for name, function in vars(module).items():
        if not (name.startswith("harness_") and callable(function)):
            continue
        marked = hasattr(function, marker)
        spec = getattr(hookspecs, name, None)
        if spec is None:
            if marked or name.startswith("harness_register"):
                raise PluginError(f"{location}: unknown hook {name!r}."
                                  f"{did_you_mean(name, hook_names())} The hooks are listed in "
                                  "harness/hookspecs.py")
            continue
        if not marked:
            raise PluginError(f"{location}: {name} is not marked as a hook, so it would never "
                              "be called; put @hookimpl (from harness import hookimpl) above it")
        wanted = list(inspect.signature(spec).parameters)
        given = [p for p in inspect.signature(function).parameters if p != "self"]
        if not set(given) <= set(wanted):
            raise PluginError(f"{location}: {name}({', '.join(given)}) takes arguments the hook "
                              f"does not have; write {name}({', '.join(wanted)})")


def _env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


class HarnessPluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers where each plugin came from."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.blocked_names: set[str] = set()
        self.blocked_seen: set[str] = set()

    def block(self, name: str) -> None:
        self.blocked_names.add(name)
        self.set_blocked(name)

    def skip(self, name: str) -> bool:
        """Whether ``name`` is blocked (and remember that the block matched something)."""
        if self.is_blocked(name):
            self.blocked_seen.add(name)
            return True
        return False

    def unmatched_blocks(self) -> list[str]:
        """Blocked names that matched no plugin: most likely typos."""
        return sorted(self.blocked_names - self.blocked_seen)

    def add_plugin(self, module: ModuleType, name: str, source: str, location: str,
                   version: str = "0", source_digest: str | None = None) -> None:
        if self.skip(name):
            return
        if name in self.infos:
            raise PluginError(
                f"two plugins are named {name!r}: {self.infos[name].location} and {location}; "
                "rename one of the files"
            )
        version = str(getattr(module, "__version__", version))
        check_hook_functions(module, location)
        try:
            self.register(module, name=name)
        except pluggy.PluginValidationError as exc:  # anything check_hook_functions missed
            raise PluginError(f"{location}: {' '.join(str(exc).split())}") from None
        hooks = tuple(sorted(
            caller.name for caller in self.get_hookcallers(module) or []
        ))
        self.infos[name] = PluginInfo(name, source, location, version, hooks, source_digest)

    def load_directory(self, directory: Path, source: str = "directory") -> None:
        for path in plugin_files(directory):
            if self.skip(path.stem):
                continue
            module = load_module_from_path(path)
            digest = source_sha256(path) if source == "directory" else None
            self.add_plugin(module, path.stem, source, str(path), source_digest=digest)

    def load_entry_points(self) -> None:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if self.skip(ep.name):
                continue
            try:
                module = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"entry point {ep.name!r} ({ep.value}) of group {ENTRY_POINT_GROUP!r} failed "
                    f"to load: {type(exc).__name__}: {exc}; uninstall it or block it with "
                    f"{ENV_BLOCK}={ep.name}"
                ) from exc
            dist = ep.dist
            version = dist.version if dist is not None else "0"
            location = f"{dist.name if dist else '?'} {version} ({ep.value})"
            self.add_plugin(module, ep.name, "entry-point", location, version)


def build_plugin_manager(
    plugin_dirs: Iterable[Path] = (),
    blocked: Iterable[str] = (),
    autoload: bool | None = None,
) -> HarnessPluginManager:
    """Built-ins, then entry points (unless disabled), then extra folders; blocks apply to all.

    ``autoload=None`` reads the environment: ``HARNESS_DISABLE_PLUGIN_AUTOLOAD=1`` skips entry
    points; ``HARNESS_BLOCK_PLUGINS=a,b`` blocks plugins by name.
    """
    pm = HarnessPluginManager()
    for name in [*_env_list(ENV_BLOCK), *blocked]:
        pm.block(name)
    pm.load_directory(paths.builtin_plugins_dir(), source="builtin")
    if autoload is None:
        autoload = os.environ.get(ENV_DISABLE_AUTOLOAD, "").lower() not in ("1", "true", "yes")
    if autoload:
        pm.load_entry_points()
    for directory in plugin_dirs:
        pm.load_directory(Path(directory))
    pm.check_pending()
    return pm
