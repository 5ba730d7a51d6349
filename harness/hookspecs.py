"""Every hook a plugin can implement, and every method the engine looks for on what the
factories return. These docstrings are the plugin reference.

Registration hooks are called once per plugin per session with a registry to fill; the
harness stamps each entry with the plugin that added it. Implement them with
``@harness.hookimpl`` in a module that sits in a plugin directory (``plugins/``,
``--plugins-dir DIR``, a suite's ``plugins = [...]``) or is exposed by a package through the
``robust_harness`` entry-point group. Each hook's ``Example::`` is a whole plugin file, and
``tests/docs/test_hook_examples.py`` loads and checks every one of them.

The protocols below name the shapes the engine relies on. Required methods are in the main
protocol of each kind; the ``Optional…`` protocols list methods the engine calls only when an
object has them (a plugin implements the ones it needs, nothing more).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pluggy
import torch
from torch import nn

from harness.contracts import DataInfo, LoadedDataset
from harness.registry import (
    ArchitectureRegistry,
    AttackRegistry,
    DatasetRegistry,
    DefenseRegistry,
    MetricRegistry,
    VariantRegistry,
)
from harness.threat import ThreatModel

PROJECT = "harness"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- what factories return ------------------------------------------------------------------


@runtime_checkable
class Attack(Protocol):
    """``attack(model, x, y) -> x_adv``: model in eval mode, x in [0,1], same shape and dtype out.

    The engine gives the attack its own copy of the batch, checks the result against the threat
    model (a violation fails the cell; nothing is clipped) and clears parameter gradients.
    """

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class OptionalAttackMethods(Protocol):
    """``input_problem(input_shape, num_classes) -> reason | None`` rejects data the attack
    cannot take (too many channels, too few classes); asked at validation and at attack time."""

    def input_problem(self, input_shape: tuple[int, ...], num_classes: int) -> str | None: ...


@runtime_checkable
class Defense(Protocol):
    """A training method: the per-batch loss, called with the model in train mode. The engine
    owns the loop, optimizer, schedule, checkpoints, AMP and devices."""

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...


Step = Callable[..., None]


@runtime_checkable
class OptionalDefenseMethods(Protocol):
    """What a defense may add to ``loss``, each called only if present:

    - ``train_batch(model, x, y, step) -> loss`` replaces ``loss`` for methods that need the
      update itself (Free-AT replays a batch; AWP perturbs weights around it);
      ``step(loss, before_update=None)`` back-propagates, calls ``before_update()``, clips and
      takes one optimizer step. ``steps_per_batch`` (default 1) tells the schedule how many.
    - ``on_epoch_start(model, epoch)`` and ``on_epoch_end(model, record)`` bracket each epoch
      (warm-ups; catastrophic-overfitting detection); ``record`` is the epoch's history row.
    - ``state_dict()`` / ``load_state_dict(state)`` for state kept across batches, saved with
      the training state so a resumed run matches an uninterrupted one.
    """

    steps_per_batch: int

    def train_batch(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    step: Step) -> torch.Tensor: ...

    def on_epoch_start(self, model: nn.Module, epoch: int) -> None: ...

    def on_epoch_end(self, model: nn.Module, record: dict[str, Any]) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class OptionalModuleMethods(Protocol):
    """Training hooks found on any submodule of a built model (prefixed so they never meet a
    third-party model's own methods):

    - ``harness_epoch_start(epoch, epochs)`` before each epoch (0-based; after a resume too,
      so derive state from ``epoch``): DARTS's drop-path ramp.
    - ``harness_auxiliary_loss(y) -> tensor | None``, added to the defense's loss at every
      update, computed from the module's last training-mode forward: DARTS's auxiliary head.

    The built-in metrics also read ``feature_map_module`` (a submodule whose output is the
    final feature map) when a backbone declares one.
    """

    def harness_epoch_start(self, epoch: int, epochs: int) -> None: ...

    def harness_auxiliary_loss(self, y: torch.Tensor) -> torch.Tensor | None: ...


@runtime_checkable
class Measure(Protocol):
    """``measure(model, x, y, info) -> {name: value}`` on a trained model in eval mode."""

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 info: DataInfo) -> dict[str, float]: ...


DatasetFactory = Callable[[Any, Path], LoadedDataset]
ArchitectureFactory = Callable[[Any, DataInfo], nn.Module]
VariantFactory = Callable[[Any, nn.Module, DataInfo], nn.Module]
AttackFactory = Callable[[Any, ThreatModel], Attack]
DefenseFactory = Callable[[Any, Attack | None], Defense]
MetricFactory = Callable[[Any], Measure]


# --- registration -------------------------------------------------------------------------------


@hookspec
def harness_register_datasets(registry: DatasetRegistry) -> None:
    """Add datasets: ``registry.add(name, factory, params=, input_shape=, num_classes=)``.

    ``factory(params, root: pathlib.Path) -> harness.LoadedDataset``: train and test splits of
    images in [0,1] (CHW float32) with integer labels, plus their ``DataInfo``. A factory whose
    files are missing raises ``harness.UserError`` saying which files it expects where and how
    to get them. ``input_shape`` is what the planner checks eps units against before loading;
    a params model whose shape varies exposes an ``input_shape`` property instead.

    Example::

        import torch
        from torch.utils.data import TensorDataset

        from harness import DataInfo, LoadedDataset, Params, hookimpl


        class StripesParams(Params):
            size: int = 64


        def stripes(params: StripesParams, root):
            generator = torch.Generator().manual_seed(0)
            y = torch.randint(0, 2, (params.size,), generator=generator)
            x = 0.5 * torch.rand(params.size, 1, 8, 8, generator=generator)
            x[y == 1, :, ::2] += 0.5  # class 1 has bright even rows
            half = params.size // 2
            return LoadedDataset(TensorDataset(x[:half], y[:half]),
                                 TensorDataset(x[half:], y[half:]),
                                 DataInfo((1, 8, 8), 2, (0.5,), (0.3,)))


        @hookimpl
        def harness_register_datasets(registry):
            registry.add("stripes", stripes, params=StripesParams, input_shape=(1, 8, 8),
                         num_classes=2)
    """


@hookspec
def harness_register_architectures(registry: ArchitectureRegistry) -> None:
    """Add architectures: ``registry.add(name, factory, params=, check_input=)``.

    ``factory(params, info: harness.DataInfo) -> torch.nn.Module``: a classifier taking images
    in [0,1] of ``info.input_shape`` and returning logits over ``info.num_classes``; any
    normalization or resizing happens inside the module (``harness.normalized``).
    ``check_input=fn(params, input_shape) -> str | None`` lets ``harness validate`` reject an
    input size the model cannot take, with the reason. Submodules may implement
    ``OptionalModuleMethods`` for training.

    Example::

        from torch import nn

        from harness import Params, hookimpl, normalized


        class TinyParams(Params):
            width: int = 8


        def tiny_cnn(params: TinyParams, info):
            channels, height, width = info.input_shape
            backbone = nn.Sequential(
                nn.Conv2d(channels, params.width, 3, padding=1), nn.ReLU(), nn.Flatten(),
                nn.Linear(params.width * height * width, info.num_classes))
            return normalized(backbone, info)


        @hookimpl
        def harness_register_architectures(registry):
            registry.add("tiny-cnn", tiny_cnn, params=TinyParams)
    """


@hookspec
def harness_register_variants(registry: VariantRegistry) -> None:
    """Add architecture variants: ``registry.add(name, factory, params=)``.

    ``factory(params, model, info: harness.DataInfo) -> torch.nn.Module`` modifies a built
    architecture (swap its activations, upsample its input after normalization…) and returns a
    model that still takes [0,1] images of the dataset's shape. A suite applies them in order::

        architectures = [{ name = "resnet18", variants = [
            "gelu", { name = "upsample", params = { scale = 2 } }] }]

    Example::

        from torch import nn

        from harness import Params, hookimpl


        class TemperatureParams(Params):
            temperature: float = 2.0


        class Tempered(nn.Module):
            def __init__(self, model, temperature):
                super().__init__()
                self.model, self.temperature = model, temperature

            def forward(self, x):
                return self.model(x) / self.temperature


        def tempered(params: TemperatureParams, model, info):
            return Tempered(model, params.temperature)


        @hookimpl
        def harness_register_variants(registry):
            registry.add("tempered", tempered, params=TemperatureParams)
    """


@hookspec
def harness_register_attacks(registry: AttackRegistry) -> None:
    """Add attacks: ``registry.add(name, factory, norms=[...], params=, minimum_norm=,
    black_box=)``.

    ``factory(params, threat: harness.ThreatModel) -> Attack``. The engine attacks in eval mode
    with parameters frozen, gives the attack a copy of the batch, checks every returned batch
    against the threat model (a violation fails the cell, nothing is clipped), verifies the
    model's parameters and buffers are unchanged, and clears parameter gradients.
    ``minimum_norm=True`` marks attacks whose outputs may exceed eps; they are scored at the
    budget instead. ``black_box=True`` marks attacks that use outputs only (compared against
    white-box attacks to detect gradient masking).

    ``harness validate`` calls the factory for every suite entry and dataset, so keep it cheap
    (build toolkit objects on the first attack call): a ``ValueError`` it raises is reported at
    the attack's key. The returned attack may implement ``OptionalAttackMethods``.

    Example::

        import torch

        from harness import Params, hookimpl


        class FgsmParams(Params):
            scale: float = 1.0


        def fgsm(params: FgsmParams, threat):
            def attack(model, x, y):
                x = x.clone().requires_grad_(True)
                loss = torch.nn.functional.cross_entropy(model(x), y)
                (grad,) = torch.autograd.grad(loss, x)
                step = params.scale * threat.eps * grad.sign()
                return (x + step).clamp(0, 1).detach()

            return attack


        @hookimpl
        def harness_register_attacks(registry):
            registry.add("my-fgsm", fgsm, params=FgsmParams, norms=["linf"])
    """


@hookspec
def harness_register_defenses(registry: DefenseRegistry) -> None:
    """Add training methods: ``registry.add(name, factory, params=, needs_attack=)``.

    ``factory(params, attack) -> Defense``, called on each training batch with the model in
    train mode. ``attack`` is the recipe's training attack (built from the attack registry)
    when ``needs_attack=True``, else None. The defense may implement
    ``OptionalDefenseMethods``. ``harness validate`` builds the defense too: a ``ValueError``
    or ``harness.UserError`` from the factory (a norm it does not support, say) is reported at
    the recipe's key.

    Example::

        import torch.nn.functional as F

        from harness import Params, hookimpl


        class MixParams(Params):
            clean_weight: float = 0.5


        class CleanAdversarialMix:
            def __init__(self, params, attack):
                self.params, self.attack = params, attack

            def loss(self, model, x, y):
                x_adv = self.attack(model, x, y)
                weight = self.params.clean_weight
                return (weight * F.cross_entropy(model(x), y)
                        + (1 - weight) * F.cross_entropy(model(x_adv), y))


        @hookimpl
        def harness_register_defenses(registry):
            registry.add("clean-adversarial-mix", CleanAdversarialMix, params=MixParams,
                         needs_attack=True)
    """


@hookspec
def harness_register_metrics(registry: MetricRegistry) -> None:
    """Add architecture metrics: ``registry.add(name, factory, params=, default=)``.

    ``factory(params) -> Measure`` runs on each trained model (eval mode) with the evaluation
    examples; the values are stored next to the model and shown in reports. ``default=True``
    metrics run when a suite does not list ``metrics = [...]`` itself.

    Example::

        import torch

        from harness import Params, hookimpl


        class MarginParams(Params):
            pass


        def mean_margin(params: MarginParams):
            @torch.no_grad()
            def measure(model, x, y, info):
                logits = model(x)
                true = logits.gather(1, y[:, None]).squeeze(1)
                other = logits.scatter(1, y[:, None], float("-inf")).amax(1)
                return {"mean_margin": float((true - other).mean())}

            return measure


        @hookimpl
        def harness_register_metrics(registry):
            registry.add("mean-margin", mean_margin, params=MarginParams)
    """
