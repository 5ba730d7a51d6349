"""Resolved components → objects: the one place a registered factory is called.

Everything the engine runs (datasets, models with their variants, guarded attacks, defenses,
metrics) is built here from a ``Resolved`` value, so validation, training, evaluation and
scripts construct a component the same way.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.cells import Resolved, ResolvedRecipe
from harness.components import Components
from harness.contracts import DataInfo, LoadedDataset
from harness.guard import GuardedAttack
from harness.hookspecs import Defense, Measure
from harness.nn import Adapted
from harness.registry import Entry
from harness.weights import load_weights


def instantiate(entry: Entry, params: dict[str, Any], *args: Any) -> Any:
    """``entry.factory(params, *args)`` with the params validated into the factory's model."""
    return entry.factory(entry.make_params(params), *args)


def load_dataset(components: Components, dataset: Resolved, root: Path) -> LoadedDataset:
    return instantiate(components.datasets.get(dataset.factory), dataset.params, root)


def build_model(components: Components, arch: Resolved, info: DataInfo,
                device: torch.device) -> nn.Module:
    """The architecture with its weights, variants and input adaptation, on ``device``.

    A third-party checkpoint fits the bare factory's module, so it is loaded before variants
    and the declared normalization wrap it; a harness checkpoint (``whole_model``) is the
    state of the whole built model and is loaded last.
    """
    factory_info = info
    if arch.inputs is not None and arch.inputs.input_size is not None:
        size = arch.inputs.input_size
        factory_info = replace(info, input_shape=(info.input_shape[0], size, size))
    model = instantiate(components.architectures.get(arch.factory), arch.params, factory_info)
    if not isinstance(model, nn.Module):
        raise TypeError(f"architecture {arch.label!r} built a {type(model).__name__}, "
                        "not a torch.nn.Module")
    if arch.weights is not None and not arch.weights.whole_model:
        load_weights(model, arch.weights)
    for variant in arch.variants:
        model = instantiate(components.variants.get(variant.factory), variant.params, model, info)
    if arch.inputs is not None:
        model = Adapted(model, arch.inputs.mean, arch.inputs.std, arch.inputs.input_size)
    if arch.weights is not None and arch.weights.whole_model:
        load_weights(model, arch.weights)
    return model.to(device)


def build_attack(components: Components, attack: Resolved, train_mode: bool = False
                 ) -> GuardedAttack:
    """The guarded attack a resolved suite entry (or a recipe's training attack) names."""
    entry = components.attacks.get(attack.factory)
    assert attack.threat is not None, "attacks are resolved with their threat model"
    return GuardedAttack(instantiate(entry, attack.params, attack.threat), attack.threat,
                         entry.minimum_norm, train_mode)


def build_defense(components: Components, recipe: ResolvedRecipe,
                  attack: GuardedAttack | None) -> Defense:
    return instantiate(components.defenses.get(recipe.defense.factory), recipe.defense.params,
                       attack)


def build_metric(components: Components, metric: Resolved) -> Measure:
    return instantiate(components.metrics.get(metric.factory), metric.params)
