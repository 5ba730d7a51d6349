"""Suite → cells: every name resolved to a factory with validated params, each cell hashed.

A train cell is dataset × architecture × recipe × seed; an eval cell is a train cell × attack.
A cell's hash covers its fully resolved configuration and the versions that can change its
result (harness, torch, each plugin), so a finished cell is never recomputed and a changed one
always is.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, get_args

import torch
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from harness import __version__
from harness.catalogue import preset_params
from harness.components import Components
from harness.contracts import LOCAL_FILE
from harness.errors import UserError
from harness.guard import build_attack
from harness.registry import UnknownNameError
from harness.specs import AttackRef, ComponentRef, Recipe, RecipeRef, TrainAttack
from harness.suite import LoadedSuite
from harness.threat import ThreatModel, check_eps_unit
from harness.tomlfile import Where, validate


def stable_hash(config: Any) -> str:
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Resolved:
    """A component as it will be built: registered factory, validated params, provenance."""

    kind: str
    label: str
    factory: str
    params: dict[str, Any]
    plugin: str
    version: str
    threat: ThreatModel | None = None  # attacks only
    minimum_norm: bool = False  # attacks only
    variants: tuple[Resolved, ...] = ()  # architectures only
    files: tuple[tuple[str, str], ...] = ()  # (param, sha256) of each LocalFile param

    def config(self) -> dict[str, Any]:
        out: dict[str, Any] = {"factory": self.factory, "params": self.params,
                               "plugin": self.plugin, "version": self.version}
        if self.files:
            out["file_sha256"] = dict(self.files)
        if self.threat is not None:
            out["threat"] = self.threat.model_dump()
        if self.variants:
            out["variants"] = [v.config() for v in self.variants]
        return out


@dataclass(frozen=True)
class ResolvedRecipe:
    label: str
    recipe: Recipe
    defense: Resolved
    attack: Resolved | None
    validation_attack: Resolved | None = None

    def config(self) -> dict[str, Any]:
        settings = self.recipe.model_dump(
            mode="json", exclude={"description", "defense", "defense_params", "attack"})
        if settings.get("validation"):
            settings["validation"].pop("attack")
        config = {"settings": settings, "defense": self.defense.config(),
                  "attack": self.attack.config() if self.attack else None}
        if self.validation_attack is not None:
            config["validation_attack"] = self.validation_attack.config()
        return config


@dataclass(frozen=True)
class TrainCell:
    dataset: Resolved
    architecture: Resolved
    recipe: ResolvedRecipe
    seed: int

    def config(self) -> dict[str, Any]:
        return {"dataset": self.dataset.config(), "architecture": self.architecture.config(),
                "recipe": self.recipe.config(), "seed": self.seed, "versions": engine_versions()}

    @cached_property
    def hash(self) -> str:
        return stable_hash(self.config())

    @property
    def labels(self) -> dict[str, Any]:
        return {"dataset": self.dataset.label, "architecture": self.architecture.label,
                "recipe": self.recipe.label, "seed": self.seed}

    def describe(self) -> str:
        return (f"train {self.dataset.label} / {self.architecture.label} / "
                f"{self.recipe.label} / seed {self.seed}")


@dataclass(frozen=True)
class EvalCell:
    train: TrainCell
    attack: Resolved
    max_examples: int | None
    batch_size: int
    mode: str = "per-attack"
    #: worst-case mode: the attacks that ran before this one in the chain (their configs)
    after: tuple[dict[str, Any], ...] = ()

    def config(self) -> dict[str, Any]:
        config = {"train": self.train.hash, "attack": self.attack.config(),
                  "max_examples": self.max_examples, "batch_size": self.batch_size,
                  "versions": engine_versions()}
        if self.mode != "per-attack":
            config.update(mode=self.mode, after=list(self.after))
        return config

    @cached_property
    def hash(self) -> str:
        return stable_hash(self.config())

    def describe(self) -> str:
        return f"attack {self.attack.label} on {self.train.describe()[6:]}"


@dataclass(frozen=True)
class MetricSpec:
    """A metric as run on every trained model; its hash keys the stored values."""

    metric: Resolved
    max_examples: int | None

    @cached_property
    def hash(self) -> str:
        return stable_hash({"metric": self.metric.config(), "max_examples": self.max_examples,
                            "versions": engine_versions()})


@dataclass
class Plan:
    suite: LoadedSuite
    train_cells: list[TrainCell] = field(default_factory=list)
    eval_cells: list[EvalCell] = field(default_factory=list)
    attacks: list[Resolved] = field(default_factory=list)
    metrics: list[MetricSpec] = field(default_factory=list)

    @property
    def attack_labels(self) -> list[str]:
        return [a.label for a in self.attacks]

    def evals_of(self, cell: TrainCell) -> list[EvalCell]:
        return [e for e in self.eval_cells if e.train.hash == cell.hash]


def engine_versions() -> dict[str, str]:
    return {"harness": __version__, "torch": torch.__version__.split("+")[0]}


# --- resolution ---------------------------------------------------------------------------------


def resolve_component(components: Components, kind: str, ref: ComponentRef, where: Where
                      ) -> Resolved:
    preset = components.catalogue.get(kind, ref.name)
    factory = preset.spec.factory if preset else ref.name
    entry = components.entry(kind, factory, where.child("name"))
    try:
        params = components.validated_params(
            entry, {**preset_params(preset), **ref.params}, where.child("params"))
    except UserError as exc:
        if preset is None or not preset_params(preset):
            raise
        raise UserError(f"{exc} (your params are merged over those of preset {ref.name!r} in "
                        f"{preset.source.name}: {preset_params(preset)})") from None
    variants: tuple[Resolved, ...] = ()
    if kind == "architectures":
        listed = [*getattr(preset and preset.spec, "variants", []), *getattr(ref, "variants", [])]
        variants = tuple(
            resolve_component(components, "variants", ComponentRef(name=v.name, params=v.params),
                              where.child("variants", i))
            for i, v in enumerate(listed))
    return Resolved(kind, ref.label or ref.name, factory, params, entry.plugin, entry.version,
                    variants=variants, files=file_digests(entry.make_params(params)))


def file_digests(params: BaseModel) -> tuple[tuple[str, str], ...]:
    """sha256 of the file each set ``LocalFile`` field names. A missing file is left to the
    component's own check, which says where the file should come from."""
    paths = [(name, Path(getattr(params, name)).expanduser())
             for name, field in type(params).model_fields.items()
             if _is_local_file(field) and getattr(params, name) is not None]
    return tuple((name, _sha256(str(path.resolve()), *_stamp(path)))
                 for name, path in paths if path.is_file())


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=64)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    """Read in chunks, once per file version (a plan resolves a component several times)."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _is_local_file(field: FieldInfo) -> bool:
    """``x: LocalFile`` keeps the mark on the field; ``x: LocalFile | None`` inside the union."""
    return LOCAL_FILE in field.metadata or any(
        LOCAL_FILE in getattr(arg, "__metadata__", ()) for arg in get_args(field.annotation))


def resolve_attacks(components: Components, ref: AttackRef | TrainAttack, where: Where
                    ) -> list[Resolved]:
    """One resolved attack per eps value (a list of eps gives a robustness curve)."""
    preset = components.catalogue.get("attacks", ref.name)
    base = resolve_component(components, "attacks", ComponentRef(
        name=ref.name, params=ref.params, label=getattr(ref, "label", None)), where)
    entry = components.attacks.get(base.factory)
    norm = ref.norm or (preset.spec.norm if preset else None)
    if norm is None:
        if len(entry.norms) != 1:
            raise where.child("norm").error(
                f"attack {entry.name!r} supports {', '.join(entry.norms)}; say which with norm = ...")
        norm = entry.norms[0]
    if norm not in entry.norms:
        raise where.child("norm").error(
            f"attack {entry.name!r} supports {', '.join(entry.norms)}, not {norm!r}")
    eps_value = ref.eps if ref.eps is not None else (preset.spec.eps if preset else None)
    if eps_value is None:
        raise where.child("eps").error(f"attack {ref.name!r} needs a budget; add eps = ...")
    eps_list = eps_value if isinstance(eps_value, list) else [eps_value]
    resolved = []
    for eps in eps_list:
        if eps < 0:
            raise where.child("eps").error(f"eps must be >= 0, got {eps:g}")
        label = f"{base.label}@{eps:g}" if len(eps_list) > 1 else base.label
        resolved.append(replace(base, label=label, threat=ThreatModel(norm=norm, eps=eps),
                                minimum_norm=entry.minimum_norm))
    return resolved


def resolve_recipe_spec(components: Components, recipe: Recipe, where: Where,
                        label: str = "") -> ResolvedRecipe:
    defense_entry = components.entry("defenses", recipe.defense, where.child("defense"))
    defense_params = components.validated_params(
        defense_entry, recipe.defense_params, where.child("defense_params"))
    defense = Resolved("defenses", recipe.defense, recipe.defense, defense_params,
                       defense_entry.plugin, defense_entry.version,
                       files=file_digests(defense_entry.make_params(defense_params)))
    attack = None
    if defense_entry.needs_attack:
        if recipe.attack is None:
            raise where.child("attack").error(
                f"defense {recipe.defense!r} trains against an attack; add attack = "
                "{ name = \"pgd\", norm = \"linf\", eps = 0.1, params = { steps = 7 } }")
        attack = resolve_attacks(components, recipe.attack, where.child("attack"))[0]
    elif recipe.attack is not None:
        raise where.child("attack").error(
            f"defense {recipe.defense!r} does not use a training attack; remove attack")
    validation_attack = None
    if recipe.validation is not None and recipe.validation.attack is not None:
        validation_attack = resolve_attacks(components, recipe.validation.attack,
                                            where.child("validation", "attack"))[0]
    return ResolvedRecipe(label, recipe, defense, attack, validation_attack)


def resolve_recipe(components: Components, ref: RecipeRef, where: Where) -> ResolvedRecipe:
    preset = components.catalogue.get("recipes", ref.name)
    overrides = dict(ref.model_extra or {})
    if preset is None and "defense" not in overrides:
        unknown = UnknownNameError("recipe", ref.name, components.catalogue.names("recipes"))
        raise where.child("name").error(str(unknown))
    base = preset.spec.model_dump(exclude_unset=True) if preset else {}
    recipe = validate(Recipe, {**base, **overrides}, where)
    return resolve_recipe_spec(components, recipe, where, ref.label or ref.name)


def resolve_metrics(components: Components, loaded: LoadedSuite, where: Where) -> list[MetricSpec]:
    refs = loaded.suite.metrics
    if refs is None:
        refs = [ComponentRef(name=e.name) for e in components.metrics if e.default]
    metrics = [resolve_component(components, "metrics", ref, where.child("metrics", i))
               for i, ref in enumerate(refs)]
    _unique_labels([(m.label, i) for i, m in enumerate(metrics)], where.child("metrics"))
    return [MetricSpec(m, loaded.suite.evaluation.max_examples) for m in metrics]


def _unique_labels(labelled: list[tuple[str, int]], where: Where) -> None:
    """Labels name matrix rows and columns, so two items may not share one."""
    seen: dict[str, int] = {}
    for label, index in labelled:
        if label in seen and seen[label] != index:
            raise where.child(index).error(
                f"label {label!r} is used twice (also at index {seen[label]}); "
                "give one of them label = \"...\"")
        seen[label] = index


def _no_duplicate_cells(cells: list[Any], what: str, where: Where) -> None:
    """Two entries that resolve to the same configuration would be one cell computed twice."""
    seen: dict[str, Any] = {}
    for cell in cells:
        if cell.hash in seen:
            raise where.error(
                f"{seen[cell.hash].describe()!r} and {cell.describe()!r} are the same {what} "
                "(identical resolved configuration); remove one")
        seen[cell.hash] = cell


def build_plan(components: Components, loaded: LoadedSuite) -> Plan:
    suite, where = loaded.suite, Where(str(loaded.path))
    datasets = [resolve_component(components, "datasets", ref, where.child("datasets", i))
                for i, ref in enumerate(suite.datasets)]
    archs = [resolve_component(components, "architectures", ref, where.child("architectures", i))
             for i, ref in enumerate(suite.architectures)]
    recipes = [resolve_recipe(components, ref, where.child("recipes", i))
               for i, ref in enumerate(suite.recipes)]
    attacks: list[Resolved] = []
    attack_where: list[Where] = []
    for i, ref in enumerate(suite.attacks):
        found = resolve_attacks(components, ref, where.child("attacks", i))
        attacks += found
        attack_where += [where.child("attacks", i)] * len(found)
    for kind, items in (("datasets", datasets), ("architectures", archs), ("recipes", recipes)):
        _unique_labels([(item.label, i) for i, item in enumerate(items)], where.child(kind))
    _unique_labels([(a.label, int(w.loc[-1])) for a, w in zip(attacks, attack_where, strict=True)],
                   where.child("attacks"))
    for dataset in datasets:
        shape = dataset_shape(components, dataset)
        for i, arch in enumerate(archs):
            _check_input(components, arch, shape, where.child("architectures", i), dataset.label)
        classes = dataset_classes(components, dataset)
        for attack, at in zip(attacks, attack_where, strict=True):
            _check_attack(components, attack, shape, classes, at, dataset.label)
        for r_index, recipe in enumerate(recipes):
            recipe_where = where.child("recipes", r_index)
            if recipe.attack is not None:
                _check_attack(components, recipe.attack, shape, classes, recipe_where.child("attack"),
                              dataset.label)
            if recipe.validation_attack is not None:
                _check_attack(components, recipe.validation_attack, shape, classes,
                              recipe_where.child("validation", "attack"), dataset.label)
    for r_index, recipe in enumerate(recipes):
        _check_defense(components, recipe, where.child("recipes", r_index))
    plan = Plan(loaded, attacks=attacks,
                metrics=resolve_metrics(components, loaded, where))
    for dataset in datasets:
        for arch in archs:
            for recipe in recipes:
                for seed in suite.seeds:
                    cell = TrainCell(dataset, arch, recipe, seed)
                    plan.train_cells.append(cell)
                    plan.eval_cells += [
                        EvalCell(cell, attack, suite.evaluation.max_examples,
                                 suite.evaluation.batch_size, suite.evaluation.mode,
                                 tuple(a.config() for a in attacks[:i])
                                 if suite.evaluation.mode == "worst-case" else ())
                        for i, attack in enumerate(attacks)]
    _no_duplicate_cells(plan.train_cells, "training run", where)
    for cell in plan.train_cells[:1]:
        _no_duplicate_cells(plan.evals_of(cell), "attack", where.child("attacks"))
    return plan


def dataset_shape(components: Components, dataset: Resolved) -> tuple[int, ...]:
    """The input shape a dataset will have: its params may set it (``params.input_shape``)."""
    entry = components.datasets.get(dataset.factory)
    return tuple(getattr(entry.make_params(dataset.params), "input_shape", entry.input_shape))


def dataset_classes(components: Components, dataset: Resolved) -> int:
    """The class count a dataset will have: its params may set it (``params.num_classes``)."""
    entry = components.datasets.get(dataset.factory)
    return int(getattr(entry.make_params(dataset.params), "num_classes", entry.num_classes))


def _check_input(components: Components, arch: Resolved, shape: tuple[int, ...], where: Where,
                 dataset: str) -> None:
    entry = components.architectures.get(arch.factory)
    if entry.check_input is not None:
        problem = entry.check_input(entry.make_params(arch.params), shape)
        if problem:
            raise where.error(f"{problem} (dataset {dataset!r} has inputs of shape {shape})")


def _check_attack(components: Components, attack: Resolved, shape: tuple[int, ...], classes: int,
                  where: Where, dataset: str) -> None:
    """Fail at validation, not after hours of training, when an attack cannot run on the data.

    The attack is built (factories are cheap: toolkit objects are made on first call); a
    factory's ValueError is a bad parameter combination, and ``input_problem`` (optional on
    the built attack) rejects inputs or class counts the toolkit cannot take.
    """
    _check_budget_unit(attack.threat, shape, where, dataset)
    try:
        built = build_attack(components, attack).attack
    except ValueError as error:
        raise where.error(str(error)) from None
    input_problem = getattr(built, "input_problem", None)
    problem = input_problem(shape, classes) if input_problem is not None else None
    if problem:
        raise where.error(f"{problem} (dataset {dataset!r} has inputs of shape {shape} and "
                          f"{classes} classes)")


def _check_defense(components: Components, recipe: ResolvedRecipe, where: Where) -> None:
    """Build the defense as training will, so one that rejects its attack (Fast-AT under l2)
    fails at validation rather than when its cell starts training."""
    attack = None  # its own problems were reported by _check_attack
    if recipe.attack is not None:
        attack = build_attack(components, recipe.attack, train_mode=True)
    entry = components.defenses.get(recipe.defense.factory)
    try:
        entry.factory(entry.make_params(recipe.defense.params), attack)
    except (UserError, ValueError) as error:
        raise where.error(str(error)) from None


def _check_budget_unit(threat: ThreatModel | None, shape: tuple[int, ...], where: Where,
                       dataset: str) -> None:
    if threat is None:
        return
    problem = check_eps_unit(threat.norm, threat.eps, shape)
    if problem:
        raise where.child("eps").error(f"{problem} (dataset {dataset!r})")
