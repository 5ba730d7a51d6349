"""The harness from a script or notebook: load a model (any architecture, with its weights),
a dataset, or a model a run trained, and benchmark a model against attacks with the engine's
budget checks and validity flags — RobustBench's ``load_model`` + ``benchmark``, checked.

Every name is what a suite would accept (a preset, a registered factory, ``rb:…`` zoo entries
when the RobustBench extra is installed); relative paths are relative to the working
directory. ``plugins`` adds plugin folders or files, as ``--plugins-dir`` does.

Reproducing a number with the toolkits alone: an attack runs on the clean-correct examples,
in order, in batches of ``batch_size``, after ``seed_everything(seed)`` once. In a run the
seed is the first 8 hex digits of the eval cell's hash (stored with the cell); in
``benchmark`` it is the first 8 hex digits of ``stable_hash(attack.config())``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.build import build_attack, build_model
from harness.build import load_dataset as _load_dataset
from harness.cells import Resolved, stable_hash
from harness.checkpoints import load_checkpoint
from harness.checks import check_attack, dataset_classes, dataset_shape
from harness.components import Components
from harness.contracts import DataInfo, LoadedDataset
from harness.data import as_tensors
from harness.errors import UserError
from harness.evaluate import check_model, clean_correct, run_attack
from harness.flags import collect_flags
from harness.plan import build_plan
from harness.resolve import resolve_attacks, resolve_component
from harness.session import load_components, load_suite_components
from harness.specs import ArchitectureRef, AttackRef, ComponentRef
from harness.store import Store
from harness.suite import load_suite
from harness.tomlfile import Where

__all__ = ["Benchmark", "benchmark", "load_dataset", "load_model", "load_trained"]

HERE = Where("python")  # relative paths resolve against the working directory


def _components(plugins: Iterable[str | Path]) -> Components:
    return load_components([Path(p) for p in plugins])


def load_dataset(name: str = "digits", params: dict[str, Any] | None = None,
                 root: str | Path = "data", plugins: Iterable[str | Path] = ()) -> LoadedDataset:
    """A dataset's train and test splits ([0,1] images) and its ``DataInfo``."""
    components = _components(plugins)
    resolved = resolve_component(components, "datasets",
                                 ComponentRef(name=name, params=params or {}), HERE)
    return _load_dataset(components, resolved, Path(root))


def load_model(name: str, dataset: str | DataInfo = "digits", weights: str | dict | None = None,
               params: dict[str, Any] | None = None, device: str | torch.device = "cpu",
               plugins: Iterable[str | Path] = (), **settings: Any) -> nn.Module:
    """An architecture in eval mode, with ``weights`` (a path, or the suite's table:
    ``{"url": ..., "sha256": ..., "key": ..., "strip": [...]}`` or ``{"run": ..., "cell":
    ...}``) loaded strictly. ``settings``: ``variants``, ``mean``, ``std``, ``input_size``."""
    components = _components(plugins)
    if isinstance(weights, str | Path):
        weights = {"path": str(weights)}
    ref = ArchitectureRef(name=name, params=params or {}, weights=weights, **settings)
    arch = resolve_component(components, "architectures", ref, HERE)
    info = dataset if isinstance(dataset, DataInfo) else load_dataset(dataset, plugins=plugins).info
    return build_model(components, arch, info, torch.device(device)).eval()


def load_trained(run_dir: str | Path, cell: str, plugins: Iterable[str | Path] = ()
                 ) -> tuple[nn.Module, LoadedDataset]:
    """A model a run trained (its cell's hash, a prefix of it, or "architecture/recipe/seed")
    in eval mode, with the dataset it was trained on. The run's suite file must still be
    where the run read it (its plugins too)."""
    store = Store(Path(run_dir))
    for run in reversed(store.runs()):
        path = Path(run["suite_path"])
        if not path.is_file():
            continue
        suite = load_suite(path)
        components = load_suite_components(suite, [Path(p) for p in plugins])
        for train in build_plan(components, suite).train_cells:
            labels = f"{train.architecture.label}/{train.recipe_label}/{train.seed}"
            finished = store.finished_train_cell(train.hash)
            if finished is not None and (train.hash.startswith(cell) or labels == cell):
                data = _load_dataset(components, train.dataset, Path("data"))
                model = build_model(components, train.architecture, data.info,
                                    torch.device("cpu"))
                return load_checkpoint(model, Path(finished["checkpoint"]),
                                       finished["checkpoint_sha256"]), data
    raise UserError(f"{run_dir}: no finished train cell {cell!r} in a run whose suite file is "
                    "still in place; 'harness report --list' shows the runs")


@dataclass
class Benchmark:
    """Clean and robust accuracy, per example and in total, with every flag raised."""

    examples: int
    clean: float
    robust: dict[str, float]
    worst_case: float
    outcomes: dict[str, torch.Tensor]  # per attack: bool per example, still correct
    flags: dict[str, dict[str, str]] = field(default_factory=dict)
    seeds: dict[str, int] = field(default_factory=dict)


def benchmark(model: nn.Module, dataset: str = "digits",
              attacks: Sequence[str | dict[str, Any]] = ("pgd20-linf-0.1",),
              max_examples: int | None = None, batch_size: int = 256,
              device: str | torch.device | None = None, plugins: Iterable[str | Path] = (),
              root: str | Path = "data") -> Benchmark:
    """Evaluate ``model`` (taking [0,1] images) on the dataset's first ``max_examples`` test
    images against each attack (a preset name, or a suite-style table such as
    ``{"name": "pgd", "norm": "linf", "eps": "8/255", "params": {"steps": 20}}``), each on
    every clean-correct example, under the engine's budget checks."""
    components = _components(plugins)
    data_ref = resolve_component(components, "datasets", ComponentRef(name=dataset), HERE)
    data = _load_dataset(components, data_ref, Path(root))
    device = torch.device(device) if device is not None else next(
        (p.device for p in model.parameters()), torch.device("cpu"))
    x, y = (t.to(device) for t in as_tensors(data.test, max_examples))
    model = model.eval().to(device)
    correct = clean_correct(model, x, y, batch_size)
    flags: dict[str, dict[str, str]] = {}
    with collect_flags() as flags["model"]:
        if correct.any():
            check_model(model, x[correct][:batch_size], y[correct][:batch_size])
    result = Benchmark(len(y), float(correct.float().mean()), {}, 0.0, {}, flags)
    worst = correct.cpu().clone()
    for i, item in enumerate(attacks):
        ref = AttackRef(name=item) if isinstance(item, str) else AttackRef(**item)
        for attack in _attacks(components, ref, data_ref, Where("benchmark", ("attacks", i))):
            seed = int(stable_hash(attack.config())[:8], 16)
            with collect_flags() as flags[attack.label]:
                outcome = run_attack(model, build_attack(components, attack), x, y, correct,
                                     batch_size, seed)
            result.robust[attack.label] = outcome.accuracy
            result.outcomes[attack.label] = outcome.robust
            result.seeds[attack.label] = seed
            worst &= outcome.robust
    result.worst_case = float(worst.float().mean()) if result.outcomes else result.clean
    return result


def _attacks(components: Components, ref: AttackRef, dataset: Resolved, where: Where
             ) -> list[Resolved]:
    """The attack (one per eps), validated for the data as a suite's would be."""
    shape, classes = dataset_shape(components, dataset), dataset_classes(components, dataset)
    resolved = resolve_attacks(components, ref, where)
    for attack in resolved:
        check_attack(components, attack, shape, classes, where, dataset.label)
    return resolved
