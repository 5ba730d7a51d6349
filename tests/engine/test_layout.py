"""The engine's shape, kept: a one-way import stack in the documented order, one table of
kinds behind the hooks, and built-in plugins that use only the public API."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import harness
from harness import hookspecs, testing, toolkits
from harness.kinds import KINDS, REGISTERED
from harness.paths import builtin_plugins_dir
from harness.registry import REGISTRY_TYPES

ENGINE = Path(harness.__file__).parent
#: Modules of the public API: plugins import from these and nothing else of the harness.
PUBLIC = {"harness", "harness.toolkits", "harness.testing"}
#: Imports inside functions, allowed only to keep the command line fast (lazy loading).
LAZY_IMPORTERS = {"cli", "pytest_plugin"}


def documented_order() -> list[str]:
    """The engine map in ``harness/__init__.py``'s docstring, top to bottom."""
    return re.findall(r"^    (\w+) {2,}\S", harness.__doc__, flags=re.MULTILINE)


def harness_imports(path: Path, top_level_only: bool) -> set[str]:
    """Engine modules a file imports (``harness.x`` → ``x``; ``from harness import x`` too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] != "harness":
                continue
            if len(parts) > 1:
                found.add(parts[1])
            else:  # from harness import x: a submodule, or a public name of the package
                found |= {a.name for a in node.names if (ENGINE / f"{a.name}.py").exists()}
    return found


def engine_modules() -> list[str]:
    return sorted(p.stem for p in ENGINE.glob("*.py") if not p.stem.startswith("_"))


def test_every_engine_module_is_on_the_map():
    assert sorted(documented_order()) == engine_modules()


def test_each_module_imports_only_modules_above_it_on_the_map():
    order = documented_order()
    for position, module in enumerate(order):
        imported = harness_imports(ENGINE / f"{module}.py", top_level_only=False)
        below = sorted(m for m in imported if order.index(m) >= position)
        assert not below, f"harness/{module}.py imports {below}, which the map puts below it"


def test_no_function_level_imports_outside_the_lazy_cli():
    for module in engine_modules():
        if module in LAZY_IMPORTERS:
            continue
        path = ENGINE / f"{module}.py"
        nested = harness_imports(path, top_level_only=False) - harness_imports(
            path, top_level_only=True)
        assert not nested, f"harness/{module}.py imports {sorted(nested)} inside a function"


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
