"""Every hook a plugin can implement. These docstrings are the plugin reference.

Registration hooks are called once per plugin per session with a registry to fill; the
harness stamps each entry with the plugin that added it. Implement them with
``@harness.hookimpl`` in a module that sits in a plugin directory (``plugins/``,
``--plugins-dir DIR``, a suite's ``plugins = [...]``) or is exposed by a package through the
``robust_harness`` entry-point group.
"""

from __future__ import annotations

import pluggy

from harness.registry import (
    ArchitectureEntry,
    AttackEntry,
    DatasetEntry,
    DefenseEntry,
    MetricEntry,
    Registry,
    VariantEntry,
)

PROJECT = "harness"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- registration -------------------------------------------------------------------------------


@hookspec
def harness_register_datasets(registry: Registry[DatasetEntry]) -> None:
    """Add datasets with ``registry.add(name, factory, input_shape=, num_classes=, params=)``.

    ``factory(params, root: pathlib.Path) -> harness.LoadedDataset``: train and test splits of
    images in [0,1] (CHW float32) with integer labels, plus their ``DataInfo``. A factory whose
    files are missing raises ``harness.UserError`` saying which files it expects where and how
    to get them. ``input_shape`` is what the planner checks eps units against before loading;
    a params model whose shape varies exposes an ``input_shape`` property instead.

    Example::

        @hookimpl
        def harness_register_datasets(registry):
            registry.add("my-data", load_my_data, input_shape=(3, 32, 32), num_classes=10)
    """


@hookspec
def harness_register_architectures(registry: Registry[ArchitectureEntry]) -> None:
    """Add architectures with ``registry.add(name, factory, params=ParamsModel)``.

    ``factory(params, info: harness.DataInfo) -> torch.nn.Module``: a classifier taking images
    in [0,1] of ``info.input_shape`` and returning logits over ``info.num_classes``; any
    normalization or resizing happens inside the module (``harness.nn.Normalize``).
    ``check_input=fn(params, input_shape) -> str | None`` lets ``harness validate`` reject an
    input size the model cannot take, with the reason.

    Training hooks, found on any submodule of the built model (prefixed so they never meet a
    third-party model's own methods): ``harness_epoch_start(epoch, epochs)`` is called before
    each epoch (0-based; after a resume too, so derive state from ``epoch``), and
    ``harness_auxiliary_loss(y) -> tensor | None`` is added to the defense's loss at every
    update, computed from the module's last training-mode forward (DARTS's auxiliary head).
    """


@hookspec
def harness_register_variants(registry: Registry[VariantEntry]) -> None:
    """Add architecture variants with ``registry.add(name, factory, params=ParamsModel)``.

    ``factory(params, model, info: harness.DataInfo) -> torch.nn.Module`` modifies a built
    architecture (swap its activations, upsample its input after normalization…) and returns a
    model that still takes [0,1] images of the dataset's shape. A suite applies them in order::

        architectures = [{ name = "resnet18", variants = [
            "gelu", { name = "upsample", params = { scale = 2 } }] }]
    """


@hookspec
def harness_register_attacks(registry: Registry[AttackEntry]) -> None:
    """Add attacks with ``registry.add(name, factory, norms=[...], params=, minimum_norm=)``.

    ``factory(params, threat: harness.ThreatModel) -> attack`` where
    ``attack(model, x, y) -> x_adv``. The engine puts the model in eval mode, checks every
    returned batch against the threat model (a violation fails the cell, nothing is clipped)
    and clears parameter gradients the attack may have written. ``minimum_norm=True`` marks
    attacks whose outputs may exceed eps; they are scored at the budget instead.

    ``harness validate`` calls the factory for every suite entry and dataset, so keep it cheap
    (build toolkit objects on the first attack call): a ``ValueError`` it raises is reported at
    the attack's key. An attack may also define ``input_problem(input_shape, num_classes) -> str | None`` to
    reject data it cannot take (too many channels, too few classes) before any training.
    """


@hookspec
def harness_register_defenses(registry: Registry[DefenseEntry]) -> None:
    """Add training methods with ``registry.add(name, factory, params=, needs_attack=)``.

    ``factory(params, attack) -> defense`` with ``defense.loss(model, x, y) -> scalar tensor``,
    called on each training batch with the model in train mode. ``attack`` is the recipe's
    training attack (built from the attack registry) when ``needs_attack=True``, else None.
    ``harness validate`` builds the defense too: a ``ValueError`` or ``harness.UserError`` from
    the factory (a norm it does not support, say) is reported at the recipe's key.
    """


@hookspec
def harness_register_metrics(registry: Registry[MetricEntry]) -> None:
    """Add architecture metrics with ``registry.add(name, factory, params=, default=)``.

    ``factory(params) -> measure`` where ``measure(model, x, y, info) -> dict[str, float]``
    runs on each trained model (eval mode) with the evaluation examples; the values are stored
    next to the model and shown in reports. ``default=True`` metrics run when a suite does not
    list ``metrics = [...]`` itself.
    """
