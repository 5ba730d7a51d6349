"""Catalogues: ``registries/*.toml`` presets, each a registered factory plus parameters."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from harness import paths
from harness.errors import UserError
from harness.kinds import CATALOGUED
from harness.specs import CatalogueFile
from harness.tomlfile import Where, read_toml, validate

PRESET_KINDS = tuple(kind.name for kind in CATALOGUED)


@dataclass(frozen=True)
class Preset:
    """A catalogue entry and the file it came from (its provenance in ``harness list``)."""

    name: str
    kind: str
    spec: BaseModel
    source: Path
    builtin: bool = False

    @property
    def description(self) -> str:
        return getattr(self.spec, "description", "")


@dataclass
class Catalogue:
    presets: dict[str, dict[str, Preset]] = field(
        default_factory=lambda: {kind: {} for kind in PRESET_KINDS})

    def load_file(self, path: Path, builtin: bool = False) -> None:
        data = read_toml(path, what="catalogue file")
        _reject_dotted_names(data, path)
        parsed = validate(CatalogueFile, data, Where(str(path)))
        for kind in PRESET_KINDS:
            for name, spec in getattr(parsed, kind).items():
                existing = self.presets[kind].get(name)
                if existing is not None:
                    raise UserError(
                        f"{path}: {kind}.{name}: preset already defined in {existing.source}; "
                        "rename one of them"
                    )
                self.presets[kind][name] = Preset(name, kind, spec, path, builtin)

    def get(self, kind: str, name: str) -> Preset | None:
        return self.presets.get(kind, {}).get(name)

    def names(self, kind: str) -> list[str]:
        return sorted(self.presets.get(kind, {}))

    def items(self, kind: str) -> Iterable[Preset]:
        return (self.presets[kind][n] for n in self.names(kind))

    def drop(self, kind: str, name: str) -> None:
        del self.presets[kind][name]


def _reject_dotted_names(data: dict[str, Any], path: Path) -> None:
    """[attacks.pgd-0.1] makes a table "pgd-0" holding "1": say to quote the name instead."""
    for kind in PRESET_KINDS:
        for name, value in data.get(kind, {}).items():
            if isinstance(value, dict) and value and \
                    all(isinstance(v, dict) for v in value.values()) and "params" not in value:
                inner = next(iter(value))
                raise UserError(
                    f"{path}: {kind}.{name}: a preset name containing a dot must be quoted: "
                    f"write [{kind}.\"{name}.{inner}\"]")


def load_catalogue(extra_files: Iterable[Path] = ()) -> Catalogue:
    """The built-in ``registries/*.toml`` files, then the user's own, in order."""
    catalogue = Catalogue()
    for path in sorted(paths.builtin_registries_dir().glob("*.toml")):
        catalogue.load_file(path, builtin=True)
    for path in extra_files:
        catalogue.load_file(Path(path))
    return catalogue


def preset_params(preset: Preset | None) -> dict[str, Any]:
    return dict(getattr(preset.spec, "params", {})) if preset else {}
