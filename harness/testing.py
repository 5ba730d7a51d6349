"""Conformance checks for plugin authors: every component a plugin registers, exercised the way
the engine will use it, on tiny real models and data (seconds on a laptop CPU).

From a test file::

    import pytest
    from harness.testing import plugin_cases

    @pytest.mark.parametrize("case", plugin_cases("my_plugins/noise.py"), ids=str)
    def test_conformance(case):
        case.check()

or, with the pytest plugin that ships with the harness, name the plugins in ``pyproject.toml``
(``[tool.pytest.ini_options] harness_plugins = ["my_plugins/noise.py"]``: folders, files or
installed plugins' names) and write a test that takes ``harness_case``. From the shell,
``harness check TARGET`` runs the same checks. Each ``check_*`` function raises
``ConformanceFailure`` (an ``AssertionError``) naming what broke, or ``Skipped`` (a
``unittest.SkipTest``, which pytest reports as a skip) when the check cannot run here, e.g. a
dataset whose files are not downloaded.
"""

from __future__ import annotations

import functools
import tempfile
import unittest
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.build import build_attack, build_defense, instantiate
from harness.cells import Resolved
from harness.checks import check_defense
from harness.components import Components
from harness.contracts import DataInfo, LoadedDataset
from harness.errors import ContractViolation, UserError
from harness.guard import GuardedAttack
from harness.hookspecs import Defense
from harness.nn import normalized
from harness.pluginmanager import ENV_BLOCK, plugin_files
from harness.registry import (
    ArchitectureEntry,
    AttackEntry,
    DatasetEntry,
    DefenseEntry,
    Entry,
    MetricEntry,
    VariantEntry,
)
from harness.resolve import resolve_recipe
from harness.seeding import seed_everything
from harness.session import load_components
from harness.specs import RecipeRef
from harness.threat import ThreatModel
from harness.tomlfile import Where

__all__ = ["Case", "ConformanceFailure", "Skipped", "all_cases", "check_architecture",
           "check_attack", "check_dataset", "check_defense_entry", "check_metric",
           "check_recipe", "check_variant", "load_components", "plugin_cases",
           "tiny_classifier"]

#: A budget per norm that moves 8×8 inputs visibly without leaving [0,1].
TEST_EPS = {"linf": 0.1, "l2": 1.0, "l1": 6.0, "l0": 6.0}
TINY_SHAPE = (3, 8, 8)
TINY_CLASSES = 4


class ConformanceFailure(AssertionError):
    """A component broke a contract the engine relies on."""


class Skipped(unittest.SkipTest):
    """The check cannot run on this machine (files missing, an optional extra not installed)."""


def _fail(entry: Entry, message: str) -> ConformanceFailure:
    return ConformanceFailure(f"{entry.kind} {entry.name!r} (plugin {entry.plugin}): {message}")


# --- tiny real models and data ------------------------------------------------------------------


@functools.cache
def tiny_data(shape: tuple[int, int, int] = TINY_SHAPE, classes: int = TINY_CLASSES
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Separable images in [0,1]: noisy copies of one random prototype per class."""
    generator = torch.Generator().manual_seed(0)
    prototypes = torch.rand(classes, *shape, generator=generator)
    y = torch.arange(4 * classes) % classes
    noise = 0.1 * torch.randn(len(y), *shape, generator=generator)
    return (prototypes[y] + noise).clamp(0, 1), y


def tiny_info(shape: tuple[int, ...] = TINY_SHAPE, classes: int = TINY_CLASSES) -> DataInfo:
    return DataInfo(tuple(shape), classes, (0.5,) * shape[0], (0.25,) * shape[0])


def tiny_classifier(trained: bool = True) -> nn.Module:
    """A small normalized CNN with BatchNorm and ReLU (what variants and attacks meet in the
    zoo), fitted to ``tiny_data`` so attacks have something to break. Eval mode."""
    seed_everything(0)
    backbone = nn.Sequential(nn.Conv2d(TINY_SHAPE[0], 8, 3, padding=1), nn.BatchNorm2d(8),
                             nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, TINY_CLASSES))
    model = normalized(backbone, tiny_info())
    if trained:
        x, y = tiny_data()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(60):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return model.eval()


def _fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The training attack handed to defenses under check (no attack plugin needed)."""
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(nn.functional.cross_entropy(model(x), y), x)
    return (x + TEST_EPS["linf"] * grad.sign()).clamp(0, 1).detach()


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _unchanged(before: dict[str, torch.Tensor], model: nn.Module) -> list[str]:
    return [k for k, v in model.state_dict().items() if not torch.equal(before[k], v)]


# --- one check per kind -------------------------------------------------------------------------


def check_dataset(entry: DatasetEntry, params: dict[str, Any] | None = None,
                  root: Path | None = None) -> None:
    """Splits of [0,1] float images of the declared shape with labels in range."""
    if params is None and not entry.test_params and _required(entry):
        raise Skipped(f"{entry.name}: needs {', '.join(_required(entry))} (your own files); "
                      "register test_params to check it")
    resolved = _resolved(entry, params)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            loaded = instantiate(entry, resolved.params, root or Path(scratch))
    except UserError as error:  # files not downloaded here: nothing to check
        raise Skipped(f"{entry.name}: {error}") from None
    if not isinstance(loaded, LoadedDataset):
        raise _fail(entry, f"the factory returned {type(loaded).__name__}, not harness.LoadedDataset")
    shape = tuple(getattr(entry.make_params(resolved.params), "input_shape", entry.input_shape))
    classes = int(getattr(entry.make_params(resolved.params), "num_classes", entry.num_classes))
    if tuple(loaded.info.input_shape) != shape or loaded.info.num_classes != classes:
        raise _fail(entry, f"DataInfo says {loaded.info.input_shape} / {loaded.info.num_classes} "
                    f"classes, the registration {shape} / {classes}")
    for split in ("train", "test"):
        data = getattr(loaded, split)
        if len(data) == 0:
            raise _fail(entry, f"the {split} split is empty")
        x, y = data[0]
        if tuple(x.shape) != shape or x.dtype != torch.float32:
            raise _fail(entry, f"{split}[0] is {x.dtype} {tuple(x.shape)}, not float32 {shape}")
        if float(x.min()) < 0 or float(x.max()) > 1:
            raise _fail(entry, f"{split}[0] has values outside [0,1]")
        if not 0 <= int(y) < classes:
            raise _fail(entry, f"{split}[0] has label {int(y)}, outside 0..{classes - 1}")


def check_architecture(entry: ArchitectureEntry, params: dict[str, Any] | None = None) -> None:
    """[0,1] images of the test shape in, logits out; input gradients; seeded determinism."""
    values = _resolved(entry, params).params
    shape = entry.test_input_shape
    if entry.check_input is not None and (problem := entry.check_input(
            entry.make_params(values), shape)):
        raise _fail(entry, f"check_input rejects its own test_input_shape {shape}: {problem}")
    info = tiny_info(shape, 10)

    def build() -> nn.Module:
        seed_everything(0)
        try:
            model = instantiate(entry, values, info)
        except UserError as error:
            if not entry.pretrained:
                raise
            raise Skipped(f"{entry.name}: a model zoo entry that cannot be built here "
                          f"({error})") from None
        if not isinstance(model, nn.Module):
            raise _fail(entry, f"the factory returned {type(model).__name__}, not an nn.Module")
        return model.eval()

    model = build()
    x = torch.rand(2, *shape, generator=torch.Generator().manual_seed(1), requires_grad=True)
    logits = model(x)
    if tuple(logits.shape) != (2, 10):
        raise _fail(entry, f"logits have shape {tuple(logits.shape)} for 2 inputs and 10 "
                    "classes, not (2, 10)")
    logits.sum().backward()
    if x.grad is None or not bool(x.grad.abs().sum() > 0):
        raise _fail(entry, "no gradient reaches the input: gradient attacks could not run")
    with torch.no_grad():
        if not torch.equal(build()(x), model(x)):
            raise _fail(entry, "two builds under the same seed give different outputs")


def check_variant(entry: VariantEntry, params: dict[str, Any] | None = None) -> None:
    """The modified model still takes [0,1] images of the dataset's shape and returns logits."""
    values = _resolved(entry, params).params
    model = instantiate(entry, values, tiny_classifier(trained=False), tiny_info())
    if not isinstance(model, nn.Module):
        raise _fail(entry, f"the factory returned {type(model).__name__}, not an nn.Module")
    x, _ = tiny_data()
    with torch.no_grad():
        logits = model.eval()(x[:2])
    if tuple(logits.shape) != (2, TINY_CLASSES) or not bool(torch.isfinite(logits).all()):
        raise _fail(entry, f"the varied model returns {tuple(logits.shape)} (finite: "
                    f"{bool(torch.isfinite(logits).all())}), not finite ({2}, {TINY_CLASSES})")


def check_attack(entry: AttackEntry, norm: str | None = None,
                 params: dict[str, Any] | None = None) -> None:
    """Under the engine's guard: within budget, right shape and dtype, deterministic under a
    seed, the model left as it was (modes, parameters, buffers, no parameter gradients)."""
    for one in [norm] if norm else entry.norms:
        _check_attack_at(entry, one, params)


def _check_attack_at(entry: AttackEntry, norm: str, params: dict[str, Any] | None) -> None:
    threat = ThreatModel(norm=norm, eps=TEST_EPS[norm])
    attack = instantiate(entry, _resolved(entry, params).params, threat)
    model = tiny_classifier()
    x, y = tiny_data()
    correct = model(x).argmax(1) == y
    x, y = x[correct][:8], y[correct][:8]
    problem = getattr(attack, "input_problem", None)
    if problem is not None and (reason := problem(tuple(x.shape[1:]), TINY_CLASSES)):
        raise Skipped(f"{entry.name} at {norm}: cannot take the check's data: {reason}")
    guarded = GuardedAttack(attack, threat, entry.minimum_norm)
    before = _state(model)
    model.train()
    try:
        seed_everything(0)
        first, norms = guarded.run(model, x, y)
        if not model.training:
            raise _fail(entry, f"at {norm}: the model was not given back in train mode")
        model.eval()
        seed_everything(0)
        second, _ = guarded.run(model, x, y)
    except ContractViolation as violation:
        raise _fail(entry, f"at {norm}: {violation}") from None
    if changed := _unchanged(before, model):
        raise _fail(entry, f"at {norm}: the attack changed the model's {', '.join(changed)}")
    if tuple(norms.shape) != (len(x),):
        raise _fail(entry, f"at {norm}: {tuple(norms.shape)} norms for {len(x)} examples")
    if not torch.equal(first, second):
        raise _fail(entry, f"at {norm}: two runs under the same seed differ")
    if any(p.grad is not None for p in model.parameters()):
        raise _fail(entry, f"at {norm}: parameter gradients leaked out of the attack")


def check_defense_entry(entry: DefenseEntry, params: dict[str, Any] | None = None) -> None:
    """One training step: ``loss`` (or ``train_batch``) gives a finite scalar that trains."""
    attack = None
    if entry.needs_attack:
        attack = GuardedAttack(_fgsm, ThreatModel(norm="linf", eps=TEST_EPS["linf"]),
                               train_mode=True)
    defense: Defense = instantiate(entry, _resolved(entry, params).params, attack)
    custom = getattr(defense, "train_batch", None)
    if custom is None and not callable(getattr(defense, "loss", None)):
        raise _fail(entry, "the defense has neither loss(model, x, y) nor train_batch(...)")
    model = tiny_classifier(trained=False).train()
    x, y = tiny_data()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    before = _state(model)

    def step(loss: torch.Tensor, before_update: Any = None) -> None:
        optimizer.zero_grad()
        loss.backward()
        if before_update is not None:
            before_update()
        optimizer.step()

    loss = custom(model, x, y, step) if custom is not None else defense.loss(model, x, y)
    if not (isinstance(loss, torch.Tensor) and loss.dim() == 0 and bool(torch.isfinite(loss))):
        raise _fail(entry, f"the loss is {loss!r}, not a finite scalar tensor")
    if custom is None:
        step(loss)
    if not _unchanged(before, model):
        raise _fail(entry, "one training step left every weight unchanged")


def check_metric(entry: MetricEntry, params: dict[str, Any] | None = None) -> None:
    """``{name: number}`` from a trained model and evaluation examples."""
    measure = instantiate(entry, _resolved(entry, params).params)
    x, y = tiny_data()
    values = measure(tiny_classifier(), x, y, tiny_info())
    if not isinstance(values, dict) or not values:
        raise _fail(entry, f"measure returned {values!r}, not a non-empty dict of numbers")
    for key, value in values.items():
        try:
            float(value)
        except (TypeError, ValueError):
            raise _fail(entry, f"value {key!r} = {value!r} is not a number") from None


def check_recipe(components: Components, name: str) -> None:
    """The preset resolves and its defense builds with its training attack, as at validation."""
    where = Where("recipe check", ("recipes", name))
    try:
        recipe = resolve_recipe(components, RecipeRef(name=name), where)
        check_defense(components, recipe, where)
        if recipe.attack is not None:
            build_defense(components, recipe, build_attack(components, recipe.attack, True))
    except UserError as error:
        raise ConformanceFailure(f"recipe {name!r}: {error}") from None


def _required(entry: Entry) -> list[str]:
    return [name for name, field in entry.params.model_fields.items() if field.is_required()]


def _resolved(entry: Entry, params: dict[str, Any] | None) -> Resolved:
    """The entry's ``test_params`` (or ``params``), validated as a suite's would be."""
    values = entry.test_params if params is None else params
    try:
        dumped = entry.make_params(values).model_dump(mode="json")
    except ValueError as error:
        raise _fail(entry, f"its test params {values} are invalid: {error}") from None
    return Resolved(entry.kind.name, entry.name, entry.name, dumped, entry.plugin, entry.version)


# --- cases: what to check for a set of plugins --------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One check: a component (and norm, for attacks) of a plugin."""

    kind: str
    name: str
    plugin: str
    norm: str | None = None
    components: Components | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}" + (f"-{self.norm}" if self.norm else "")

    def check(self) -> None:
        components = self.components or load_components(autoload=False)
        if self.kind == "recipes":
            check_recipe(components, self.name)
            return
        entry = components.registries[self.kind].get(self.name)
        if self.kind == "attacks":
            check_attack(entry, self.norm)
        else:
            CHECKS[self.kind](entry)


CHECKS = {"datasets": check_dataset, "architectures": check_architecture,
          "variants": check_variant, "defenses": check_defense_entry, "metrics": check_metric}


def all_cases(components: Components, plugins: Iterable[str] | None = None) -> list[Case]:
    """Every component of the named plugins (all of them when None); the catalogue's recipe
    presets too: all of them when checking everything, else those of the user's own catalogue
    files (``harness check --catalogue``), which the named plugins may provide for."""
    wanted = None if plugins is None else set(plugins)
    cases: list[Case] = []
    for kind, registry in components.registries.items():
        for entry in registry:
            if wanted is not None and entry.plugin not in wanted:
                continue
            norms = entry.norms if kind == "attacks" else (None,)
            cases += [Case(kind, entry.name, entry.plugin, norm, components) for norm in norms]
    cases += [Case("recipes", preset.name, "catalogue", None, components)
              for preset in components.catalogue.items("recipes")
              if wanted is None or not preset.builtin]
    return cases


def plugin_cases(target: str | Path, base: Path | None = None) -> list[Case]:
    """The cases of one plugin: a plugin file, a plugin package folder, a folder of plugins,
    or the name of an installed plugin (its entry-point name). Paths are relative to ``base``
    (default: the working directory)."""
    components, names = load_target(target, base)
    return all_cases(components, names)


def load_target(target: str | Path, base: Path | None = None,
                plugin_dirs: Iterable[str | Path] = (), catalogue_files: Iterable[str | Path] = (),
                blocked: Iterable[str] = ()) -> tuple[Components, list[str]]:
    """Components with the target loaded beside the built-ins, and the plugins to check: the
    target's, and those of ``plugin_dirs`` (what ``harness check --plugins-dir`` adds is
    checked too, not only loaded). ``catalogue_files`` are loaded (and so validated), and
    ``blocked`` plugins are not. Paths are relative to ``base`` (default: the working
    directory, and messages name them as given)."""
    root = Path(base) if base is not None else Path()
    extra = [root / p for p in plugin_dirs]
    catalogues = [root / p for p in catalogue_files]
    path = root / target
    if path.exists():
        components = load_components([path, *extra], catalogues, blocked, autoload=False)
        names = _plugins_from(components, [path, *extra])
        if not names and (skipped := [p.stem for p in plugin_files(path)
                                      if components.pm.is_blocked(p.stem)]):
            raise _blocked(target, skipped)
        return components, names
    components = load_components(extra, catalogues, blocked)
    if components.pm.is_blocked(str(target)):
        raise _blocked(target, [str(target)])
    if str(target) not in components.pm.infos:
        installed = sorted(n for n, i in components.pm.infos.items() if i.source == "entry-point")
        raise UserError(f"{target}: no such file or folder, and no installed plugin of that name "
                        f"(installed: {', '.join(installed) or 'none'}); give a plugin file, "
                        "folder or entry-point name")
    return components, [str(target), *_plugins_from(components, extra)]


def _plugins_from(components: Components, locations: Iterable[Path]) -> list[str]:
    """The plugins loaded from these files or folders (built-ins and installed ones never,
    even when a location holds them)."""
    resolved = [location.resolve() for location in locations]
    return [info.name for info in components.pm.infos.values() if info.source == "directory"
            and any(Path(info.location).resolve().is_relative_to(p) for p in resolved)]


def _blocked(target: str | Path, names: list[str]) -> UserError:
    """Not "provides nothing" or "no such plugin": the user's own block hid the target."""
    return UserError(f"{target}: blocked ({', '.join(names)}: --block-plugin or {ENV_BLOCK}), "
                     "so there is nothing to check; unblock it")


def iter_results(cases: Iterable[Case]) -> Iterator[tuple[Case, str, str]]:
    """(case, "ok" | "fail" | "skip", detail) for each case, for ``harness check``."""
    for case in cases:
        try:
            case.check()
        except unittest.SkipTest as skipped:  # Skipped, or a plugin's own skip
            yield case, "skip", str(skipped)
        except AssertionError as failure:
            yield case, "fail", str(failure)
        except Exception as error:  # a plugin's own exception is a failed check, not a crash
            yield case, "fail", f"{type(error).__name__}: {error}"
        else:
            yield case, "ok", ""
