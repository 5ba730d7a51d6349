"""Validation probes: fail at ``harness validate``, not after hours of training, when a model,
an attack or a defense cannot take the suite's data or settings.

Factories are cheap (toolkit objects are made on first call), so each attack and defense is
built here exactly as the run will build it.
"""

from __future__ import annotations

import torch

from harness.build import build_attack, build_defense, build_model
from harness.cells import Resolved, ResolvedRecipe
from harness.components import Components
from harness.contracts import DataInfo
from harness.errors import UserError
from harness.threat import check_eps_unit
from harness.tomlfile import Where


def dataset_shape(components: Components, dataset: Resolved) -> tuple[int, ...]:
    """The input shape a dataset will have: its params may set it (``params.input_shape``)."""
    entry = components.datasets.get(dataset.factory)
    return tuple(getattr(entry.make_params(dataset.params), "input_shape", entry.input_shape))


def dataset_classes(components: Components, dataset: Resolved) -> int:
    """The class count a dataset will have: its params may set it (``params.num_classes``)."""
    entry = components.datasets.get(dataset.factory)
    return int(getattr(entry.make_params(dataset.params), "num_classes", entry.num_classes))


def check_suite(components: Components, datasets: list[Resolved], archs: list[Resolved],
                recipes: list[ResolvedRecipe], attacks: list[tuple[Resolved, Where]],
                where: Where) -> None:
    """Every architecture, attack and recipe against every dataset of the suite."""
    for dataset in datasets:
        shape = dataset_shape(components, dataset)
        classes = dataset_classes(components, dataset)
        for i, arch in enumerate(archs):
            check_architecture(components, arch, shape, where.child("architectures", i),
                               dataset.label)
            check_weights(components, arch, shape, classes, where.child("architectures", i),
                          dataset.label)
        for attack, at in attacks:
            check_attack(components, attack, shape, classes, at, dataset.label)
        for i, recipe in enumerate(recipes):
            at = where.child("recipes", i)
            if recipe.attack is not None:
                check_attack(components, recipe.attack, shape, classes, at.child("attack"),
                             dataset.label)
            if recipe.validation_attack is not None:
                check_attack(components, recipe.validation_attack, shape, classes,
                             at.child("validation", "attack"), dataset.label)
    for i, recipe in enumerate(recipes):
        check_defense(components, recipe, where.child("recipes", i))


def check_architecture(components: Components, arch: Resolved, shape: tuple[int, ...],
                       where: Where, dataset: str) -> None:
    """The architecture's own ``check_input`` (an input size it cannot take)."""
    entry = components.architectures.get(arch.factory)
    if entry.check_input is not None:
        problem = entry.check_input(entry.make_params(arch.params), shape)
        if problem:
            raise where.error(f"{problem} (dataset {dataset!r} has inputs of shape {shape})")


def check_weights(components: Components, arch: Resolved, shape: tuple[int, ...], classes: int,
                  where: Where, dataset: str) -> None:
    """Weights on disk are loaded (strictly) at validation, and the model is checked on one
    batch: [0,1] images of the dataset's shape in, finite logits over its classes out."""
    if arch.weights is None or arch.weights.file is None:  # none, or a URL not yet fetched
        return
    info = DataInfo(tuple(shape), classes, (0.5,) * shape[0], (0.25,) * shape[0])
    try:
        model = build_model(components, arch, info, torch.device("cpu")).eval()
    except UserError as error:
        raise where.child("weights").error(str(error)) from None
    with torch.no_grad():
        logits = model(torch.rand(2, *shape, generator=torch.Generator().manual_seed(0)))
    if tuple(logits.shape) != (2, classes) or not bool(torch.isfinite(logits).all()):
        raise where.error(
            f"with its weights, the model returns {tuple(logits.shape)} for 2 inputs of shape "
            f"{shape}, not finite logits of shape (2, {classes}) (dataset {dataset!r}); does it "
            "take [0,1] images? declare mean, std and input_size if it expects others")


def check_attack(components: Components, attack: Resolved, shape: tuple[int, ...], classes: int,
                 where: Where, dataset: str) -> None:
    """The budget's unit, the factory (a ValueError is a bad parameter combination) and the
    built attack's optional ``input_problem`` (inputs or class counts the toolkit cannot take)."""
    if attack.threat is not None:
        problem = check_eps_unit(attack.threat.norm, attack.threat.eps, shape)
        if problem:
            at = attack.eps_where or where.child("eps")
            used = "" if at == where.child("eps") else f"; used by {where}"
            raise at.error(f"{problem} (dataset {dataset!r}{used})")
    try:
        built = build_attack(components, attack).attack
    except ValueError as error:
        raise where.error(str(error)) from None
    input_problem = getattr(built, "input_problem", None)
    problem = input_problem(shape, classes) if input_problem is not None else None
    if problem:
        raise where.error(f"{problem} (dataset {dataset!r} has inputs of shape {shape} and "
                          f"{classes} classes)")


def check_defense(components: Components, recipe: ResolvedRecipe, where: Where) -> None:
    """Build the defense as training will, so one that rejects its attack (Fast-AT under l2)
    fails at validation rather than when its cell starts training."""
    attack = None  # its own problems were reported by check_attack
    if recipe.attack is not None:
        attack = build_attack(components, recipe.attack, train_mode=True)
    try:
        build_defense(components, recipe, attack)
    except (UserError, ValueError) as error:
        raise where.error(str(error)) from None
