"""The training loop: the engine owns optimizer, schedule, augmentation, EMA, selection,
checkpoints and resumption; a defense plugin supplies the per-batch loss.

A defense implements ``loss(model, x, y)``, or ``train_batch(model, x, y, step)`` when it needs
the update itself (Free-AT replays a batch; AWP perturbs weights around the update):
``step(loss, before_update=None)`` back-propagates, calls ``before_update()``, clips and takes
one optimizer step. ``on_epoch_start(model, epoch)`` and ``on_epoch_end(model, record)``
(optional) bracket each epoch (warm-ups; catastrophic-overfitting detection); a defense with
state across batches provides ``state_dict``/``load_state_dict`` so a resumed run matches.
"""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import Dataset, Subset, TensorDataset
from tqdm.auto import tqdm

from harness.augment import POLICIES, AheadAutoAugment, augment
from harness.build import build_attack, build_defense, build_model
from harness.cells import TrainCell
from harness.checkpoints import atomic_write, keep_previous
from harness.components import Components
from harness.contracts import LoadedDataset
from harness.data import as_tensors, batch_indices, train_batches
from harness.devices import (
    augment_workers,
    autocast,
    channels_last,
    compile_model,
    compile_seconds,
)
from harness.evaluate import clean_correct, run_attack
from harness.flags import raise_flag
from harness.guard import GuardedAttack
from harness.schedule import lr_factor
from harness.seeding import preserved_rng, rng_state, seed_everything, set_rng_state
from harness.specs import Recipe
from harness.toolkits import model_device

PROBE_SEED = 12345


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: recorded as the cell's error."""


@dataclass
class TrainResult:
    model: nn.Module  # the weights to evaluate: last or best, EMA when the recipe keeps one
    best_state: dict[str, torch.Tensor] | None = None
    last_state: dict[str, torch.Tensor] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, float] = field(default_factory=dict)
    probe: GuardedAttack | None = None
    seconds: float = 0.0


def split_validation(dataset: Dataset, fraction: float) -> tuple[Dataset, Dataset]:
    """A fixed held-out part of the training set (seed 0: the same split for every cell)."""
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))
    n_val = max(1, round(fraction * len(dataset)))
    val, train = order[:n_val].sort().values, order[n_val:].sort().values
    if isinstance(dataset, TensorDataset):  # a HeldDataset stays one
        return (type(dataset)(*(t[train] for t in dataset.tensors)),
                type(dataset)(*(t[val] for t in dataset.tensors)))
    return Subset(dataset, train.tolist()), Subset(dataset, val.tolist())


def build_optimizer(recipe: Recipe, model: nn.Module) -> torch.optim.Optimizer:
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                               weight_decay=recipe.weight_decay, nesterov=recipe.nesterov)
    cls = torch.optim.Adam if recipe.optimizer == "adam" else torch.optim.AdamW
    return cls(model.parameters(), lr=recipe.lr, betas=recipe.betas,
               weight_decay=recipe.weight_decay)


@dataclass
class Probe:
    """Clean and robust accuracy of fixed example sets, measured without disturbing training."""

    attack: GuardedAttack | None
    sets: dict[str, tuple[torch.Tensor, torch.Tensor]]
    batch_size: int

    def measure(self, model: nn.Module) -> dict[str, float]:
        out: dict[str, float] = {}
        was_training = model.training
        with preserved_rng(model_device(model, torch.device("cpu"))):
            for name, (x, y) in self.sets.items():
                correct = clean_correct(model, x, y, self.batch_size)
                out[f"{name}_clean"] = float(correct.float().mean())
                if self.attack is not None:
                    robust = run_attack(model, self.attack, x, y, correct, self.batch_size,
                                        PROBE_SEED).robust
                    out[f"{name}_robust"] = float(robust.float().mean())
        model.train(was_training)
        return out


class Trainer:
    """One train cell: resumable epoch by epoch from ``state_path``.

    The cell's speed settings (resolved by the plan for its device) apply as given: bf16
    autocast over each training step and its attack, channels_last model and batches, and one
    compiled model (``net``) that the step and the attack share; ``model`` stays the plain
    module the optimizer, EMA and checkpoints hold.
    """

    def __init__(self, components: Components, cell: TrainCell, data: LoadedDataset,
                 device: torch.device, state_path: Path | None = None) -> None:
        self.cell, self.device, self.state_path = cell, device, state_path
        self.recipe = recipe = cell.recipe.recipe
        self.speed = cell.recipe.speed
        seed_everything(cell.seed)
        self.model = build_model(components, cell.architecture, data.info, device)
        if self.speed.channels_last:
            channels_last(self.model)
        self.net = compile_model(self.model) if self.speed.compile else self.model
        train_mode = recipe.attack_bn == "train"
        attack = (build_attack(components, cell.recipe.attack, train_mode)
                  if cell.recipe.attack else None)
        self.defense = build_defense(components, cell.recipe, attack)
        self.optimizer = build_optimizer(recipe, self.model)
        self.train_set, probe_sets = data.train, {}
        if recipe.validation is not None:
            self.train_set, val_set = split_validation(data.train, recipe.validation.fraction)
            probe_sets["val"] = as_tensors(val_set, recipe.validation.max_examples)
        limit = recipe.validation.max_examples if recipe.validation else 512
        probe_sets["train"] = as_tensors(self.train_set, limit)
        probe_attack = attack
        if recipe.validation is not None and recipe.validation.attack is not None:
            probe_attack = build_attack(components, cell.recipe.validation_attack)
        self.probe = Probe(probe_attack, {k: (x.to(device), y.to(device))
                                          for k, (x, y) in probe_sets.items()},
                           recipe.batch_size)
        self.ema = (AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(recipe.ema),
                                  use_buffers=True) if recipe.ema else None)
        self.generator = torch.Generator().manual_seed(cell.seed)
        workers = augment_workers(device)
        self.ahead = (AheadAutoAugment(self.train_set.tensors[0], recipe.augment,
                                       recipe.crop_padding, workers)
                      if workers and recipe.augment in POLICIES
                      and isinstance(self.train_set, TensorDataset) else None)
        self.steps_per_batch = int(getattr(self.defense, "steps_per_batch", 1))
        # Architecture training hooks (e.g. DARTS's drop-path ramp and auxiliary head).
        self.epoch_hooks = _module_hooks(self.model, "harness_epoch_start")
        self.auxiliary_losses = _module_hooks(self.model, "harness_auxiliary_loss")
        n_batches = -(-len(self.train_set) // recipe.batch_size)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda step: lr_factor(recipe, step, n_batches * self.steps_per_batch))
        self.history: list[dict[str, Any]] = []
        self.best: tuple[float, dict[str, torch.Tensor]] | None = None
        self.epoch = 0

    # --- the update, shared by plain and custom defenses ---

    def step(self, loss: torch.Tensor, before_update: Callable[[], None] | None = None,
             labels: torch.Tensor | None = None) -> None:
        if labels is not None:
            for auxiliary_loss in self.auxiliary_losses:
                extra = auxiliary_loss(labels)
                if extra is not None:
                    loss = loss + extra
        if not torch.isfinite(loss.detach()):
            raise TrainingDiverged(f"loss is {float(loss.detach())} at epoch {self.epoch + 1}; "
                                   "lower lr or add grad_clip to the recipe")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if before_update is not None:
            before_update()
        if self.recipe.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe.grad_clip)
        self.optimizer.step()
        self.schedule.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for x, y in self._augmented_batches():
            if self.speed.channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, y

    def _augmented_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.ahead is not None:
            images, labels = self.train_set.tensors[:2]
            return self.ahead.batches(
                batch_indices(self.train_set, self.recipe.batch_size, self.generator), labels,
                self.generator, images.device, images.dtype)
        return ((augment(x, self.recipe.augment, self.recipe.crop_padding, self.generator), y)
                for x, y in train_batches(self.train_set, self.recipe.batch_size, self.device,
                                          self.generator))

    def run_epoch(self) -> float:
        self.model.train()
        total, count = 0.0, 0
        custom = getattr(self.defense, "train_batch", None)
        for x, y in self.batches():
            with autocast(self.speed.amp, self.device):
                if custom is not None:
                    loss = custom(self.net, x, y, functools.partial(self.step, labels=y))
                else:
                    loss = self.defense.loss(self.net, x, y)
                    self.step(loss, labels=y)
            total += float(loss.detach()) * len(y)
            count += len(y)
        return total / max(count, 1)

    @property
    def evaluated(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.model

    def end_epoch(self, loss: float) -> None:
        record: dict[str, Any] = {"epoch": self.epoch + 1, "loss": loss,
                                  "lr": self.optimizer.param_groups[0]["lr"]}
        record.update(self.probe.measure(self.ema.module if self.ema is not None else self.net))
        self.history.append(record)
        hook = getattr(self.defense, "on_epoch_end", None)
        if hook is not None:
            hook(self.model, record)
        validation = self.recipe.validation
        if validation is not None and self.epoch + 1 >= validation.start_epoch:
            score = record.get("val_robust", record["val_clean"])
            if self.best is None or score > self.best[0]:
                self.best = (score, copy.deepcopy(self.evaluated.state_dict()))
        self.epoch += 1

    # --- resumption ---

    def save_state(self) -> None:
        if self.state_path is None:
            return
        state = {"epoch": self.epoch, "model": self.model.state_dict(),
                 "optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
                 "ema": self.ema.state_dict() if self.ema else None, "history": self.history,
                 "best": self.best, "rng": rng_state(self.device),
                 "generator": self.generator.get_state(),
                 "defense": (self.defense.state_dict()
                             if hasattr(self.defense, "state_dict") else None)}
        keep_previous(self.state_path)
        atomic_write(self.state_path, lambda tmp: torch.save(state, tmp))

    def load_state(self) -> bool:
        if self.state_path is None or not self.state_path.exists():
            return False
        state = torch.load(self.state_path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.history, self.best, self.epoch = state["history"], state["best"], state["epoch"]
        if state.get("defense") is not None:
            self.defense.load_state_dict(state["defense"])
        set_rng_state(state["rng"], self.device)
        self.generator.set_state(state["generator"].cpu())
        return True

    def run(self) -> TrainResult:
        started = time.perf_counter()
        compiled_before = compile_seconds() if self.speed.compile else 0.0
        self.load_state()
        epochs = tqdm(range(self.epoch, self.recipe.epochs), desc=self.cell.describe(),
                      leave=False, unit="epoch", disable=None)
        for _ in epochs:
            for hook in self.epoch_hooks:
                hook(self.epoch, self.recipe.epochs)
            start = getattr(self.defense, "on_epoch_start", None)
            if start is not None:
                start(self.model, self.epoch)
            loss = self.run_epoch()
            self.end_epoch(loss)
            self.save_state()
            epochs.set_postfix(loss=f"{loss:.3f}")
        self.model.zero_grad(set_to_none=True)
        best = self.best[1] if self.best else None
        # The last weights are kept beside the best ones only when there is a best to keep.
        last = copy.deepcopy(self.evaluated.state_dict()) if best is not None else None
        chosen = copy.deepcopy(self.evaluated)
        if self.recipe.checkpoint == "best" and best is not None:
            chosen.load_state_dict(best)
        chosen.eval()
        summary = {f"final_{k}": v for k, v in self.probe.measure(chosen).items()}
        if self.speed.amp:
            summary.update(self.bf16_crosscheck(chosen, summary))
        if self.speed.compile:  # reported apart from the run time, which it is part of
            summary["compile_seconds"] = compile_seconds() - compiled_before
        return TrainResult(chosen, best, last, self.history, summary, self.probe.attack,
                           time.perf_counter() - started)

    def bf16_crosscheck(self, model: nn.Module, fp32: dict[str, float]) -> dict[str, float]:
        """The probe again under bf16 autocast: a gap to fp32 means bf16 evaluation would lie."""
        with autocast(True, self.device):
            bf16 = self.probe.measure(model)
        gaps = {k: abs(bf16[k] - fp32[f"final_{k}"]) for k in bf16}
        if max(gaps.values(), default=0) > 0.02:
            raise_flag("bf16-mismatch", f"probe accuracy under bf16 differs from fp32 by up to "
                       f"{100 * max(gaps.values()):.1f} points: {gaps}")
        return {f"bf16_{k}": v for k, v in bf16.items()}


def _module_hooks(model: nn.Module, name: str) -> list[Callable[..., Any]]:
    """The ``name`` methods of the model's modules, for the training loop to call."""
    return [hook for module in model.modules()
            if callable(hook := getattr(module, name, None))]


def train(components: Components, cell: TrainCell, data: LoadedDataset, device: torch.device,
          state_path: Path | None = None) -> TrainResult:
    """Train one cell from its seed (or from ``state_path``, where a killed run left off)."""
    return Trainer(components, cell, data, device, state_path).run()
