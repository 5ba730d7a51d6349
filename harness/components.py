"""The components of a session: the plugin manager, the registries its plugins filled, and the
catalogue of presets; looking a name up gives a did-you-mean error naming where it was asked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from harness.catalogue import Catalogue
from harness.errors import PluginError, UserError
from harness.kinds import KINDS
from harness.pluginmanager import HarnessPluginManager
from harness.registry import (
    REGISTRY_TYPES,
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
from harness.tomlfile import Where, describe_validation_error


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

    @property
    def metrics(self) -> Registry[MetricEntry]:
        return self.registries["metrics"]

    def entry(self, kind: str, factory: str, where: Where, presets_allowed: bool = True) -> Entry:
        """The registered factory, or a user error naming where it was asked for."""
        try:
            return self.registries[kind].get(factory)
        except UnknownNameError as exc:
            presets = self.catalogue.names(kind) if presets_allowed else []
            choices = sorted({*exc.choices, *presets})
            raise where.error(str(UnknownNameError(exc.kind, exc.name, choices))) from None

    def validated_params(self, entry: Entry, values: dict[str, Any], where: Where) -> dict[str, Any]:
        """Params checked against the factory's model, as plain JSON-ready values."""
        try:
            return entry.make_params(values).model_dump(mode="json")
        except ValidationError as exc:
            raise UserError(describe_validation_error(exc, where, entry.params)) from None


def collect_registries(pm: HarnessPluginManager) -> dict[str, Registry[Any]]:
    """Call each plugin's registration hooks separately, so every entry is stamped with it."""
    registries: dict[str, Registry[Any]] = {}
    for name, registry_type in REGISTRY_TYPES.items():
        hook_name = KINDS[name].hook
        registry = registry_type()
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            info = pm.infos[impl.plugin_name]
            registry.current_plugin, registry.current_version = info.name, info.version
            registry.current_source = info.source_sha256
            try:
                impl.function(**{arg: registry for arg in impl.argnames})
            except PluginError as exc:
                raise PluginError(f"{info.location}: {exc}") from None
            except Exception as exc:
                raise PluginError(
                    f"{info.location}: plugin {impl.plugin_name!r} failed in {hook_name}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        registry.freeze()
        registries[name] = registry
    return registries
