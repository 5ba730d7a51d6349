"""The engine's shape, kept: a one-way import stack in the documented order, one table of
kinds behind the hooks, and built-in plugins that use only the public API."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import click

import harness
from harness import hookspecs, testing, toolkits
from harness.cli import cli
from harness.kinds import KINDS, REGISTERED
from harness.paths import builtin_plugins_dir
from harness.registry import REGISTRY_TYPES

ENGINE = Path(harness.__file__).parent
#: Modules of the public API: plugins import from these and nothing else of the harness.
PUBLIC = {"harness", "harness.toolkits", "harness.testing"}
#: Imports inside functions, allowed only to keep the command line fast (lazy loading): in
#: ``cli``, in every module of the ``commands`` package it registers, and in the pytest plugin.
LAZY_IMPORTERS = {"cli", "pytest_plugin"}
LAZY_PACKAGES = {"commands"}


def documented_order() -> list[str]:
    """The engine map in ``harness/__init__.py``'s docstring, top to bottom (a module of a
    package as ``package.module``)."""
    return re.findall(r"^    ([\w.]+) {2,}\S", harness.__doc__, flags=re.MULTILINE)


def source(module: str) -> Path:
    """``harness/commands/run.py`` of ``commands.run`` (relative to the checkout)."""
    return ENGINE.joinpath(*module.split(".")).with_suffix(".py").relative_to(ENGINE.parent)


def harness_imports(path: Path, top_level_only: bool) -> set[str]:
    """Engine modules a file imports (``harness.x`` → ``x``, ``harness.p.x`` → ``p.x``;
    ``from harness import x`` and ``from harness.p import x`` too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] != "harness":
                continue
            package = ENGINE.joinpath(*parts[1:])
            if not package.is_dir():
                found.add(".".join(parts[1:]))
            else:  # from harness[.p] import x: a submodule, or a public name of the package
                found |= {".".join([*parts[1:], a.name]) for a in node.names
                          if (package / f"{a.name}.py").exists()}
    return found


def engine_modules() -> list[str]:
    """Every module under harness/, packages' included (``__init__`` and ``__main__`` aside)."""
    parts = [p.relative_to(ENGINE).with_suffix("").parts for p in ENGINE.rglob("*.py")]
    return sorted(".".join(p) for p in parts if not any(part.startswith("_") for part in p))


def lazy_importer(module: str) -> bool:
    return module in LAZY_IMPORTERS or module.split(".")[0] in LAZY_PACKAGES


def test_every_engine_module_is_on_the_map():
    assert sorted(documented_order()) == engine_modules()


def test_each_module_imports_only_modules_above_it_on_the_map():
    order = documented_order()
    for position, module in enumerate(order):
        imported = harness_imports(ENGINE.parent / source(module), top_level_only=False)
        below = sorted(m for m in imported if order.index(m) >= position)
        assert not below, f"{source(module)} imports {below}, which the map puts below it"


def test_no_function_level_imports_outside_the_lazy_cli():
    for module in engine_modules():
        if lazy_importer(module):
            continue
        path = ENGINE.parent / source(module)
        nested = harness_imports(path, top_level_only=False) - harness_imports(
            path, top_level_only=True)
        assert not nested, f"{source(module)} imports {sorted(nested)} inside a function"


def test_every_command_is_registered():
    """A command written in harness/commands/ but not added to the group would just be missing
    from ``harness``."""
    defined = {value for module in engine_modules() if module.startswith("commands.")
               for value in vars(importlib.import_module(f"harness.{module}")).values()
               if isinstance(value, click.Command)}
    assert defined == set(cli.commands.values())


def plugin_sources() -> list[Path]:
    return sorted(builtin_plugins_dir().rglob("*.py"))


def test_builtin_plugins_use_only_the_public_api():
    for path in plugin_sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                    node.module.split(".")[0] == "harness":
                assert node.module in PUBLIC, f"{path.name} imports {node.module}"
                public = set({"harness": harness.__all__, "harness.toolkits": toolkits.__all__,
                              "harness.testing": testing.__all__}[node.module])
                private = sorted({a.name for a in node.names} - public)
                assert not private, f"{path.name} imports {private} from {node.module}"


def test_kinds_table_matches_the_hooks_and_registries():
    specs = {name for name in dir(hookspecs) if name.startswith("harness_register_")}
    assert specs == {kind.hook for kind in REGISTERED}
    assert list(REGISTRY_TYPES) == [kind.name for kind in REGISTERED]
    assert all(REGISTRY_TYPES[kind].entry_type.kind is KINDS[kind] for kind in REGISTRY_TYPES)
