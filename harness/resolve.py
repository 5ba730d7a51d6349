"""Names → factories with validated parameters: suite entries and catalogue presets resolved.

Every user-written name (a preset or a registered factory) becomes a ``Resolved`` value here,
its parameters checked against the factory's params model, so an error names the file and key
where the mistake is. Catalogue presets are resolved when the catalogue loads.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.catalogue import Preset, preset_params
from harness.cells import InputAdapter, MetricSpec, Resolved, ResolvedRecipe
from harness.components import Components
from harness.errors import UserError
from harness.files import local_file_digests, local_file_fields
from harness.kinds import KINDS
from harness.registry import Entry, UnknownNameError
from harness.specs import AttackRef, ComponentRef, Recipe, RecipeRef, TrainAttack
from harness.suite import LoadedSuite
from harness.threat import ThreatModel
from harness.tomlfile import Where, relative_to, validate
from harness.weights import resolve_weights


def resolve_component(components: Components, kind: str, ref: ComponentRef, where: Where
                      ) -> Resolved:
    preset = components.catalogue.get(kind, ref.name)
    factory = preset.spec.factory if preset else ref.name
    suite_dir = Path(where.source).parent
    if kind == "architectures" and preset is None and ":" in factory and \
            factory not in components.architectures:
        ref, factory = _import_ref(ref, suite_dir, where), IMPORT_FACTORY
    entry = components.entry(kind, factory, where.child("name"))
    merged = {**_local_files(entry, preset_params(preset), preset.source.parent if preset else
                             suite_dir),
              **_local_files(entry, ref.params, suite_dir)}
    try:
        params = components.validated_params(entry, merged, where.child("params"))
    except UserError as exc:
        if preset is None or not preset_params(preset):
            raise
        raise UserError(f"{exc} (your params are merged over those of preset {ref.name!r} in "
                        f"{preset.source.name}: {preset_params(preset)})") from None
    resolved = Resolved(kind, ref.label or ref.name, factory, params, entry.plugin,
                        entry.version, files=local_file_digests(entry.make_params(params)),
                        source=entry.source_sha256)
    if kind != "architectures":
        return resolved
    return _architecture(components, resolved, preset, ref, where)


#: The built-in factory (plugins/imported.py) behind ``module:callable`` and ``file.py:Name``.
IMPORT_FACTORY = "import"


def _import_ref(ref: ComponentRef, base: Path, where: Where) -> ComponentRef:
    """``module:callable`` or ``file.py:Name`` as the import factory's params: the entry's
    params become the callable's keyword arguments; the file (hashed) or the package's
    version stand for the code."""
    module, _, name = ref.name.rpartition(":")
    params: dict[str, Any] = {"target": ref.name, "kwargs": dict(ref.params)}
    if module.endswith(".py"):
        path = relative_to(module, base)
        if not path.is_file():
            raise where.child("name").error(f"{path} does not exist; a file:Name architecture "
                                            "is relative to the file that names it")
        params["file"] = str(path)
    elif module and name:
        top = module.split(".")[0]
        dists = importlib.metadata.packages_distributions().get(top, [])
        params["package_version"] = importlib.metadata.version(dists[0]) if dists else None
    return ref.model_copy(update={"params": params, "label": ref.label or ref.name})


def _local_files(entry: Entry, values: dict[str, Any], base: Path) -> dict[str, Any]:
    """``LocalFile`` params written as relative paths, made relative to the file that wrote
    them (the suite, or the catalogue of a preset), like ``plugins`` and weights."""
    out = dict(values)
    for name in local_file_fields(entry.params):
        value = out.get(name)
        if isinstance(value, str):
            out[name] = str(relative_to(value, base))
    return out


def _architecture(components: Components, resolved: Resolved, preset: Preset | None,
                  ref: ComponentRef, where: Where) -> Resolved:
    """Variants (the preset's, then the suite's), weights and input adaptation."""
    preset_spec = preset.spec if preset else None
    listed = [*getattr(preset_spec, "variants", []), *getattr(ref, "variants", [])]
    variants = tuple(
        resolve_component(components, "variants", ComponentRef(name=v.name, params=v.params),
                          where.child("variants", i))
        for i, v in enumerate(listed))
    weights = None
    if getattr(ref, "weights", None) is not None:
        weights = resolve_weights(ref.weights, Path(where.source).parent, where)
    elif getattr(preset_spec, "weights", None) is not None:
        assert preset is not None
        weights = resolve_weights(preset_spec.weights, preset.source.parent,
                                  Where(str(preset.source), ("architectures", preset.name)))
    settings = [s for s in (ref, preset_spec) if s is not None]
    mean = next((s.mean for s in settings if getattr(s, "mean", None)), None)
    std = next((s.std for s in settings if getattr(s, "std", None)), None)
    size = next((s.input_size for s in settings if getattr(s, "input_size", None)), None)
    inputs = (InputAdapter(tuple(mean) if mean else None, tuple(std) if std else None, size)
              if mean or size else None)
    entry = components.architectures.get(resolved.factory)
    return replace(resolved, variants=variants, weights=weights, inputs=inputs,
                   pretrained=weights is not None or entry.pretrained)


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
    # A budget taken from a preset is blamed on the preset when it is wrong for the data.
    eps_where = (where.child("eps") if ref.eps is not None or preset is None else
                 Where(str(preset.source), ("attacks", preset.name, "eps")))
    eps_list = eps_value if isinstance(eps_value, list) else [eps_value]
    resolved = []
    for eps in eps_list:
        if eps < 0:
            raise where.child("eps").error(f"eps must be >= 0, got {eps:g}")
        label = f"{base.label}@{eps:g}" if len(eps_list) > 1 else base.label
        resolved.append(replace(base, label=label, threat=ThreatModel(norm=norm, eps=eps),
                                minimum_norm=entry.minimum_norm, eps_where=eps_where))
    return resolved


def resolve_recipe_spec(components: Components, recipe: Recipe, where: Where, label: str = "",
                        attack_where: Where | None = None,
                        validation_where: Where | None = None) -> ResolvedRecipe:
    """``attack_where``/``validation_where``: where the recipe's attacks were written, when
    that is a catalogue preset rather than ``where``."""
    defense_entry = components.entry("defenses", recipe.defense, where.child("defense"))
    defense_params = components.validated_params(
        defense_entry, recipe.defense_params, where.child("defense_params"))
    defense = Resolved("defenses", recipe.defense, recipe.defense, defense_params,
                       defense_entry.plugin, defense_entry.version,
                       files=local_file_digests(defense_entry.make_params(defense_params)),
                       source=defense_entry.source_sha256)
    attack = None
    if defense_entry.needs_attack:
        if recipe.attack is None:
            raise where.child("attack").error(
                f"defense {recipe.defense!r} trains against an attack; add attack = "
                "{ name = \"pgd\", norm = \"linf\", eps = 0.1, params = { steps = 7 } }")
        attack = resolve_attacks(components, recipe.attack,
                                 (attack_where or where).child("attack"))[0]
    elif recipe.attack is not None:
        raise where.child("attack").error(
            f"defense {recipe.defense!r} does not use a training attack; remove attack")
    validation_attack = None
    if recipe.validation is not None and recipe.validation.attack is not None:
        validation_attack = resolve_attacks(
            components, recipe.validation.attack,
            (validation_where or where).child("validation", "attack"))[0]
    return ResolvedRecipe(label, recipe, defense, attack, validation_attack)


def resolve_recipe(components: Components, ref: RecipeRef, where: Where) -> ResolvedRecipe:
    preset = components.catalogue.get("recipes", ref.name)
    overrides = dict(ref.model_extra or {})
    if preset is None and "defense" not in overrides:
        unknown = UnknownNameError(KINDS["recipes"], ref.name, components.catalogue.names("recipes"))
        raise where.child("name").error(str(unknown))
    base = preset.spec.model_dump(exclude_unset=True) if preset else {}
    recipe = validate(Recipe, {**base, **overrides}, where)
    origin = Where(str(preset.source), ("recipes", preset.name)) if preset else None
    return resolve_recipe_spec(components, recipe, where, ref.label or ref.name,
                               attack_where=None if "attack" in overrides else origin,
                               validation_where=None if "validation" in overrides else origin)


def resolve_metrics(components: Components, loaded: LoadedSuite, where: Where) -> list[MetricSpec]:
    refs = loaded.suite.metrics
    if refs is None:
        refs = [ComponentRef(name=e.name) for e in components.metrics if e.default]
    metrics = [resolve_component(components, "metrics", ref, where.child("metrics", i))
               for i, ref in enumerate(refs)]
    return [MetricSpec(m, loaded.suite.evaluation.max_examples) for m in metrics]


def validate_catalogue(components: Components) -> None:
    """Every preset names a registered factory with valid parameters (checked at load).

    Built-in presets whose plugin is blocked or absent are dropped rather than reported: the
    user chose not to load that plugin. A user catalogue's presets must all resolve.
    """
    catalogue = components.catalogue
    for kind in ("datasets", "architectures", "attacks"):  # recipes: below
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
