"""Typed registries that plugins fill: add / get with did-you-mean / list with wildcards / freeze."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from harness.contracts import Params
from harness.errors import PluginError, UserError, did_you_mean
from harness.kinds import KINDS, Kind
from harness.threat import NORM_ORDER


class NoParams(Params):
    """Parameter model of a factory that takes none: any key given is a mistake."""


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
    #: sha256 of the plugin's source when it was loaded from a folder (part of cell hashes).
    source_sha256: str | None = None

    def __post_init__(self) -> None:
        where = f"{self.kind} {self.name!r} from plugin {self.plugin!r}"
        if not callable(self.factory):
            raise PluginError(f"{where}: the factory must be callable, got "
                              f"{type(self.factory).__name__} {self.factory!r}")
        if not (isinstance(self.params, type) and issubclass(self.params, BaseModel)):
            raise PluginError(f"{where}: params must be a subclass of harness.Params, got "
                              f"{self.params!r}")
        if self.params.model_config.get("extra") != "forbid":
            raise PluginError(
                f"{where}: params model {self.params.__name__} ignores unknown keys, so a typo "
                "in a suite would be silently dropped; derive it from harness.Params (or set "
                'model_config = ConfigDict(extra="forbid"))')

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
    #: The factory returns trained weights (a model zoo): evaluated as built, never trained.
    pretrained: bool = False


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
    """Name → entry for one kind of component; filled by plugins, then frozen.

    Each kind's registry has its own typed ``add`` (below), so an editor completes the keyword
    arguments a plugin may pass.
    """

    entry_type: type[E]
    _entries: dict[str, E] = field(default_factory=dict)
    _frozen: bool = False
    current_plugin: str = "?"
    current_version: str = "0"
    current_source: str | None = None

    @property
    def kind(self) -> Kind:
        return self.entry_type.kind

    def _add(self, name: str, factory: Callable[..., Any], **metadata: Any) -> E:
        """Register ``factory`` under ``name``; a name taken by another plugin is an error."""
        if self._frozen:
            raise PluginError(f"{self.kind} registry is frozen; register {name!r} from a hook")
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {self.current_plugin!r}: {self.kind} name must be a "
                              f"non-empty string, got {name!r}")
        if name in self._entries:
            other = self._entries[name].plugin
            raise PluginError(
                f"{self.kind} {name!r} is registered by both {other!r} and "
                f"{self.current_plugin!r}; rename one or block a plugin with --block-plugin"
            )
        metadata["test_params"] = dict(metadata.get("test_params") or {})
        entry = self.entry_type(name=name, factory=factory, plugin=self.current_plugin,
                                version=self.current_version, source_sha256=self.current_source,
                                **metadata)
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



TestParams = Mapping[str, Any] | None


@dataclass
class DatasetRegistry(Registry[DatasetEntry]):
    entry_type: type[DatasetEntry] = DatasetEntry

    def add(self, name: str, factory: Callable[..., Any], *, params: type[Params] = NoParams,
            input_shape: Sequence[int] = (3, 32, 32), num_classes: int = 10,
            description: str = "", test_params: TestParams = None) -> DatasetEntry:
        """``factory(params, root) -> LoadedDataset``; ``input_shape`` (C, H, W) and
        ``num_classes`` are known without loading (budget units are checked against them)."""
        return self._add(name, factory, params=params, input_shape=tuple(input_shape),
                         num_classes=num_classes, description=description,
                         test_params=test_params)


@dataclass
class ArchitectureRegistry(Registry[ArchitectureEntry]):
    entry_type: type[ArchitectureEntry] = ArchitectureEntry

    def add(self, name: str, factory: Callable[..., Any], *, params: type[Params] = NoParams,
            check_input: Callable[[Any, tuple[int, ...]], str | None] | None = None,
            test_input_shape: Sequence[int] = (1, 8, 8), pretrained: bool = False,
            description: str = "", test_params: TestParams = None) -> ArchitectureEntry:
        """``factory(params, info) -> nn.Module``; ``check_input(params, shape)`` says why an
        input shape cannot work; ``test_input_shape`` is the smallest input for the checks;
        ``pretrained`` factories return trained models (a zoo), evaluated without training."""
        return self._add(name, factory, params=params, check_input=check_input,
                         test_input_shape=tuple(test_input_shape), pretrained=pretrained,
                         description=description, test_params=test_params)


@dataclass
class VariantRegistry(Registry[VariantEntry]):
    entry_type: type[VariantEntry] = VariantEntry

    def add(self, name: str, factory: Callable[..., Any], *, params: type[Params] = NoParams,
            description: str = "", test_params: TestParams = None) -> VariantEntry:
        """``factory(params, model, info) -> nn.Module``, keeping the model contract."""
        return self._add(name, factory, params=params, description=description,
                         test_params=test_params)


@dataclass
class AttackRegistry(Registry[AttackEntry]):
    entry_type: type[AttackEntry] = AttackEntry

    def add(self, name: str, factory: Callable[..., Any], *, params: type[Params] = NoParams,
            norms: Sequence[str] = ("linf",), minimum_norm: bool = False,
            black_box: bool = False, description: str = "",
            test_params: TestParams = None) -> AttackEntry:
        """``factory(params, threat) -> attack(model, x, y) -> x_adv`` for each of ``norms``;
        ``minimum_norm`` attacks are scored at the budget; ``black_box`` ones use no gradients."""
        return self._add(name, factory, params=params, norms=tuple(norms),
                         minimum_norm=minimum_norm, black_box=black_box,
                         description=description, test_params=test_params)


@dataclass
class DefenseRegistry(Registry[DefenseEntry]):
    entry_type: type[DefenseEntry] = DefenseEntry

    def add(self, name: str, factory: Callable[..., Any], *, params: type[Params] = NoParams,
            needs_attack: bool = False, description: str = "",
            test_params: TestParams = None) -> DefenseEntry:
        """``factory(params, attack) -> defense``; ``attack`` is None unless ``needs_attack``."""
        return self._add(name, factory, params=params, needs_attack=needs_attack,
                         description=description, test_params=test_params)


@dataclass
class MetricRegistry(Registry[MetricEntry]):
    entry_type: type[MetricEntry] = MetricEntry

    def add(self, name: str, factory: Callable[..., Any], *, params: type[Params] = NoParams,
            default: bool = False, description: str = "",
            test_params: TestParams = None) -> MetricEntry:
        """``factory(params) -> measure(model, x, y, info) -> {name: value}``; ``default``
        metrics run when a suite lists none."""
        return self._add(name, factory, params=params, default=default,
                         description=description, test_params=test_params)


#: The registry of each registered kind, in ``KINDS`` order.
REGISTRY_TYPES: dict[str, type[Registry[Any]]] = {
    registry.entry_type.kind.name: registry
    for registry in (DatasetRegistry, ArchitectureRegistry, VariantRegistry, AttackRegistry,
                     DefenseRegistry, MetricRegistry)
}
