"""Typed registries that plugins fill: add / get with did-you-mean / list with wildcards / freeze."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from harness.errors import PluginError, UserError, did_you_mean
from harness.kinds import KINDS, Kind
from harness.threat import NORM_ORDER


class NoParams(BaseModel):
    """Parameter model of a factory that takes none: any key given is a mistake."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Entry:
    """One registered factory, stamped with the plugin that provided it."""

    kind: ClassVar[Kind]

    name: str
    factory: Callable[..., Any]
    params: type[BaseModel] = NoParams
    description: str = ""
    version: str = "0"
    plugin: str = "?"
    #: Parameters that make the factory cheap enough for the conformance tests (timm style).
    test_params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (isinstance(self.params, type) and issubclass(self.params, BaseModel)):
            raise PluginError(
                f"{self.kind} {self.name!r} from plugin {self.plugin!r}: params must be a "
                f"pydantic BaseModel subclass, got {self.params!r}"
            )

    def make_params(self, values: dict[str, Any] | None = None) -> BaseModel:
        """Validate raw parameters against the factory's declared model (raises ValidationError)."""
        return self.params.model_validate(values or {})

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "plugin": self.plugin, "version": self.version,
                "description": self.description}


@dataclass(frozen=True)
class ArchitectureEntry(Entry):
    """``factory(params, info: DataInfo) -> nn.Module`` taking [0,1] images, returning logits.

    ``test_input_shape`` is the smallest (C, H, W) input the conformance tests should use.
    """

    kind: ClassVar[Kind] = KINDS["architectures"]

    test_input_shape: tuple[int, int, int] = (1, 8, 8)
    #: ``check_input(params, input_shape) -> reason | None``: why this model cannot take inputs
    #: of that shape, asked at validation time so the error is not deep inside a forward pass.
    check_input: Callable[[Any, tuple[int, ...]], str | None] | None = None


@dataclass(frozen=True)
class VariantEntry(Entry):
    """``factory(params, model, info: DataInfo) -> nn.Module``: modifies a built architecture.

    Applied in the order a suite lists them (e.g. activation swap, then input upsampling); the
    result must keep the model contract ([0,1] inputs of the dataset's shape → logits).
    """

    kind: ClassVar[Kind] = KINDS["variants"]


@dataclass(frozen=True)
class AttackEntry(Entry):
    """``factory(params, threat: ThreatModel) -> attack(model, x, y) -> x_adv``.

    ``minimum_norm`` attacks may return points beyond eps; they are scored at the budget (an
    example is broken only if misclassified within eps) instead of failing the budget check.
    """

    kind: ClassVar[Kind] = KINDS["attacks"]

    norms: tuple[str, ...] = ("linf",)
    minimum_norm: bool = False
    #: Uses only model outputs (no gradients): compared against white-box attacks for masking.
    black_box: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = [n for n in self.norms if n not in NORM_ORDER]
        if unknown or not self.norms:
            raise PluginError(
                f"attack {self.name!r} from plugin {self.plugin!r}: norms must be a non-empty "
                f"subset of {sorted(NORM_ORDER)}, got {list(self.norms)}"
            )

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "norms": list(self.norms), "minimum_norm": self.minimum_norm,
                "black_box": self.black_box}


@dataclass(frozen=True)
class DefenseEntry(Entry):
    """``factory(params, attack) -> Defense``; ``attack`` is None unless ``needs_attack``."""

    kind: ClassVar[Kind] = KINDS["defenses"]

    needs_attack: bool = False

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "needs_attack": self.needs_attack}


@dataclass(frozen=True)
class DatasetEntry(Entry):
    """``factory(params, root: Path) -> LoadedDataset``; shape and classes known without loading."""

    kind: ClassVar[Kind] = KINDS["datasets"]

    input_shape: tuple[int, int, int] = (3, 32, 32)
    num_classes: int = 10

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "input_shape": list(self.input_shape),
                "num_classes": self.num_classes}


@dataclass(frozen=True)
class MetricEntry(Entry):
    """``factory(params) -> measure(model, x, y, info) -> {name: value}`` on a trained model.

    ``x, y`` are the evaluation examples (test split, [0,1] inputs). ``default`` metrics are
    computed when a suite does not list its own.
    """

    kind: ClassVar[Kind] = KINDS["metrics"]

    default: bool = False

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "default": self.default}


E = TypeVar("E", bound=Entry)


class UnknownNameError(UserError):
    """A name that no plugin or catalogue registered; carries the did-you-mean hint."""

    def __init__(self, kind: Kind, name: str, choices: list[str]) -> None:
        self.kind, self.name, self.choices = kind, name, choices
        super().__init__(
            f"unknown {kind.singular} {name!r}.{did_you_mean(name, choices)} "
            f"Run 'harness list {kind.name}' ({len(choices)} available)."
        )


@dataclass
class Registry(Generic[E]):
    """Name → entry for one kind of component; filled by plugins, then frozen."""

    entry_type: type[E]
    _entries: dict[str, E] = field(default_factory=dict)
    _frozen: bool = False
    current_plugin: str = "?"
    current_version: str = "0"

    @property
    def kind(self) -> Kind:
        return self.entry_type.kind

    def add(self, name: str, factory: Callable[..., Any], **metadata: Any) -> E:
        """Register ``factory`` under ``name``; a name taken by another plugin is an error."""
        if self._frozen:
            raise PluginError(f"{self.kind} registry is frozen; register {name!r} from a hook")
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {self.current_plugin!r}: {self.kind} name must be a string")
        if name in self._entries:
            other = self._entries[name].plugin
            raise PluginError(
                f"{self.kind} {name!r} is registered by both {other!r} and "
                f"{self.current_plugin!r}; rename one or block a plugin with --block-plugin"
            )
        metadata.setdefault("version", self.current_version)
        if "norms" in metadata:
            metadata["norms"] = tuple(metadata["norms"])
        for key in ("input_shape", "test_input_shape"):
            if key in metadata:
                metadata[key] = tuple(metadata[key])
        try:
            entry = self.entry_type(name=name, factory=factory, plugin=self.current_plugin,
                                    **metadata)
        except TypeError as exc:
            raise PluginError(f"plugin {self.current_plugin!r}, {self.kind} {name!r}: {exc}") from None
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> E:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, sorted(self._entries)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[E]:
        return iter(self._entries[name] for name in sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def list(self, pattern: str = "*", exclude: str | None = None) -> list[E]:
        """Entries whose name matches the fnmatch ``pattern`` (timm's ``list_models`` style)."""
        return [
            e for e in self
            if fnmatch.fnmatchcase(e.name, pattern)
            and not (exclude and fnmatch.fnmatchcase(e.name, exclude))
        ]

    def freeze(self) -> None:
        self._frozen = True


#: The entry type of each registered kind (``KINDS`` order).
ENTRY_TYPES: dict[str, type[Entry]] = {
    entry_type.kind.name: entry_type
    for entry_type in (DatasetEntry, ArchitectureEntry, VariantEntry, AttackEntry, DefenseEntry,
                       MetricEntry)
}
