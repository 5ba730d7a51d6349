"""Everything a session can use: the plugin manager, its filled registries and the catalogue."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.catalogue import Catalogue, Preset, load_catalogue
from harness.errors import PluginError, UserError
from harness.pluginmanager import HarnessPluginManager, build_plugin_manager
from harness.registry import (
    ArchitectureEntry,
    AttackEntry,
    DatasetEntry,
    DefenseEntry,
    Entry,
    MetricEntry,
    Registry,
    UnknownNameError,
    VariantEntry,
)
from harness.suite import LoadedSuite
from harness.tomlfile import Where, describe_validation_error

HOOKS = {
    "datasets": ("harness_register_datasets", DatasetEntry),
    "architectures": ("harness_register_architectures", ArchitectureEntry),
    "variants": ("harness_register_variants", VariantEntry),
    "attacks": ("harness_register_attacks", AttackEntry),
    "defenses": ("harness_register_defenses", DefenseEntry),
    "metrics": ("harness_register_metrics", MetricEntry),
}


@dataclass
class Components:
    pm: HarnessPluginManager
    registries: dict[str, Registry[Any]]
    catalogue: Catalogue

    @property
    def datasets(self) -> Registry[DatasetEntry]:
        return self.registries["datasets"]

    @property
    def architectures(self) -> Registry[ArchitectureEntry]:
        return self.registries["architectures"]

    @property
    def variants(self) -> Registry[VariantEntry]:
        return self.registries["variants"]

    @property
    def attacks(self) -> Registry[AttackEntry]:
        return self.registries["attacks"]

    @property
    def defenses(self) -> Registry[DefenseEntry]:
        return self.registries["defenses"]

    def entry(self, kind: str, factory: str, where: Where, presets_allowed: bool = True) -> Entry:
        """The registered factory, or a user error naming where it was asked for."""
        try:
            return self.registries[kind].get(factory)
        except UnknownNameError as exc:
            presets = self.catalogue.names(kind) if presets_allowed else []
            choices = sorted({*exc.choices, *presets})
            raise where.error(str(UnknownNameError(exc.kind, exc.name, choices))) from None

    @property
    def metrics(self) -> Registry[MetricEntry]:
        return self.registries["metrics"]

    def validated_params(self, entry: Entry, values: dict[str, Any], where: Where) -> dict[str, Any]:
        """Params checked against the factory's model, as plain JSON-ready values."""
        try:
            return entry.make_params(values).model_dump(mode="json")
        except ValidationError as exc:
            raise UserError(describe_validation_error(exc, where, entry.params)) from None


def collect_registries(pm: HarnessPluginManager) -> dict[str, Registry[Any]]:
    """Call each plugin's registration hooks separately, so every entry is stamped with it."""
    registries: dict[str, Registry[Any]] = {}
    for kind, (hook_name, entry_type) in HOOKS.items():
        registry: Registry[Any] = Registry(entry_type)
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            registry.current_plugin = impl.plugin_name
            registry.current_version = pm.infos[impl.plugin_name].version
            try:
                impl.function(**{arg: registry for arg in impl.argnames})
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(
                    f"plugin {impl.plugin_name!r} failed in {hook_name}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        registry.freeze()
        registries[kind] = registry
    return registries


def load_components(
    plugin_dirs: Iterable[Path] = (),
    catalogue_files: Iterable[Path] = (),
    blocked: Iterable[str] = (),
    autoload: bool | None = None,
) -> Components:
    pm = build_plugin_manager(plugin_dirs, blocked, autoload)
    components = Components(pm, collect_registries(pm), load_catalogue(catalogue_files))
    validate_catalogue(components)
    return components


def load_suite_components(suite: LoadedSuite, plugin_dirs: Iterable[Path] = (),
                          catalogue_files: Iterable[Path] = (), blocked: Iterable[str] = ()
                          ) -> Components:
    """The components a suite runs with: the command line's plugins and catalogues, then the
    suite's own ``plugins`` and ``catalogues`` (relative to the suite file)."""
    return load_components([*plugin_dirs, *suite.existing_paths("plugins", is_dir=True)],
                           [*catalogue_files, *suite.existing_paths("catalogues", is_dir=False)],
                           blocked)


def validate_catalogue(components: Components) -> None:
    """Every preset names a registered factory with valid parameters (checked at load).

    Built-in presets whose plugin is blocked or absent are dropped rather than reported: the
    user chose not to load that plugin. A user catalogue's presets must all resolve.
    """
    from harness.plan import resolve_recipe_spec  # the recipe resolver lives with the planner

    catalogue = components.catalogue
    for kind in ("datasets", "architectures", "attacks"):
        for preset in list(catalogue.items(kind)):
            if preset.builtin and preset.spec.factory not in components.registries[kind]:
                catalogue.drop(kind, preset.name)
                continue
            where = Where(str(preset.source), (kind, preset.name))
            entry = components.entry(kind, preset.spec.factory, where.child("factory"),
                                     presets_allowed=False)
            components.validated_params(entry, preset.spec.params, where.child("params"))
            if not _variants_resolve(components, preset, where):
                catalogue.drop(kind, preset.name)
                continue
            if kind == "attacks" and preset.spec.norm not in entry.norms:
                raise where.child("norm").error(
                    f"attack {entry.name!r} supports {', '.join(entry.norms)}, "
                    f"not {preset.spec.norm!r}"
                )
    for preset in list(catalogue.items("recipes")):
        where = Where(str(preset.source), ("recipes", preset.name))
        try:
            resolve_recipe_spec(components, preset.spec, where)
        except UserError:
            if not preset.builtin:
                raise
            catalogue.drop("recipes", preset.name)


def _variants_resolve(components: Components, preset: Preset, where: Where) -> bool:
    """An architecture preset's variants name registered variants with valid parameters.

    False for a built-in preset whose variant plugin is blocked (it is dropped, like one whose
    factory is); a user catalogue's mistakes are errors at the catalogue's own key.
    """
    for i, variant in enumerate(getattr(preset.spec, "variants", [])):
        if preset.builtin and variant.name not in components.registries["variants"]:
            return False
        at = where.child("variants", i)
        entry = components.entry("variants", variant.name, at.child("name"), presets_allowed=False)
        components.validated_params(entry, variant.params, at.child("params"))
    return True
