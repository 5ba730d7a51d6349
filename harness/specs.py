"""The pydantic models of what users write: component references, presets and recipes.

Used both by catalogue files (``registries/*.toml``) and suites; every model forbids unknown
keys so a typo is an error, not a silently ignored setting.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from harness.threat import Eps, Norm, parse_eps


def _eps_list(value: Any) -> Any:
    """eps = 0.1 and eps = [0.1] mean the same; a list gives one attack per value."""
    if not isinstance(value, list):
        return [parse_eps(value)]
    if not value:
        raise ValueError("eps list is empty; give at least one value")
    return value


def _name_to_table(value: Any) -> Any:
    """Let a list item be a bare name: "pgd20-linf-8" means {name = "pgd20-linf-8"}."""
    return {"name": value} if isinstance(value, str) else value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComponentRef(_Strict):
    """A suite's reference to a preset or a registered factory, with parameter overrides."""

    name: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None


class AttackRef(ComponentRef):
    """An attack reference; ``eps`` may be a list, which expands into one attack per value."""

    norm: Norm | None = None
    eps: Annotated[list[Eps], BeforeValidator(_eps_list)] | None = None


class RecipeRef(BaseModel):
    """A recipe preset by name, with any ``Recipe`` field overridden inline.

    A name that is not a preset defines a new recipe inline; it must then give ``defense``.
    """

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1)
    label: str | None = None


class VariantRef(_Strict):
    """A modification applied to a built architecture (activation swap, input upsampling…)."""

    name: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)


VariantItem = Annotated[VariantRef, BeforeValidator(_name_to_table)]


class ArchitectureRef(ComponentRef):
    """An architecture with variants applied in order, after the preset's own variants."""

    variants: list[VariantItem] = Field(default_factory=list)


ComponentItem = Annotated[ComponentRef, BeforeValidator(_name_to_table)]
ArchitectureItem = Annotated[ArchitectureRef, BeforeValidator(_name_to_table)]
AttackItem = Annotated[AttackRef, BeforeValidator(_name_to_table)]
RecipeItem = Annotated[RecipeRef, BeforeValidator(_name_to_table)]


class FactoryPreset(_Strict):
    """A named, parameterised use of a registered factory (an entry of a catalogue file)."""

    factory: str
    params: dict[str, Any] = Field(default_factory=dict)
    description: str = ""


class ArchitecturePreset(FactoryPreset):
    variants: list[VariantItem] = Field(default_factory=list)


class AttackPreset(FactoryPreset):
    norm: Norm
    eps: Eps = Field(ge=0)


class TrainAttack(_Strict):
    """The attack a defense trains against, inline in a recipe (or a preset name)."""

    name: str
    norm: Norm | None = None
    eps: Eps | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class Recipe(_Strict):
    """How to train: the defense and its attack, optimizer, schedule and batch size."""

    description: str = ""
    defense: str = "standard"
    defense_params: dict[str, Any] = Field(default_factory=dict)
    attack: Annotated[TrainAttack, BeforeValidator(_name_to_table)] | None = None
    epochs: int = Field(ge=1)
    batch_size: int = Field(default=128, ge=1)
    optimizer: Literal["sgd"] = "sgd"
    lr: float = Field(default=0.1, gt=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(default=5e-4, ge=0)
    milestones: list[int] = Field(default_factory=list)
    gamma: float = Field(default=0.1, gt=0)
    grad_clip: float | None = Field(default=None, gt=0)


class CatalogueFile(_Strict):
    """The layout of a ``registries/*.toml`` file: presets grouped by kind."""

    datasets: dict[str, FactoryPreset] = Field(default_factory=dict)
    architectures: dict[str, ArchitecturePreset] = Field(default_factory=dict)
    attacks: dict[str, AttackPreset] = Field(default_factory=dict)
    recipes: dict[str, Recipe] = Field(default_factory=dict)
