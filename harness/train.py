"""The training loop: the engine owns optimizer, schedule, seeding and checkpoints; a defense
plugin supplies the per-batch loss."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model
from torch import nn
from tqdm.auto import tqdm

from harness.components import Components
from harness.contracts import LoadedDataset
from harness.data import train_batches
from harness.guard import GuardedAttack
from harness.plan import Resolved, TrainCell
from harness.seeding import seed_everything


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: recorded as the cell's error."""


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def build_model(components: Components, arch: Resolved, data: LoadedDataset,
                device: torch.device) -> nn.Module:
    entry = components.architectures.get(arch.factory)
    model = entry.factory(entry.make_params(arch.params), data.info)
    for variant in arch.variants:
        variant_entry = components.variants.get(variant.factory)
        model = variant_entry.factory(variant_entry.make_params(variant.params), model, data.info)
    if not isinstance(model, nn.Module):
        raise TypeError(f"architecture {arch.label!r} built a {type(model).__name__}, "
                        "not a torch.nn.Module")
    return model.to(device)


def build_attack(components: Components, attack: Resolved) -> GuardedAttack:
    entry = components.attacks.get(attack.factory)
    assert attack.threat is not None
    return GuardedAttack(entry.factory(entry.make_params(attack.params), attack.threat),
                         attack.threat, entry.minimum_norm)


def train(components: Components, cell: TrainCell, data: LoadedDataset, device: torch.device
          ) -> TrainResult:
    """Train one cell from its seed; deterministic on CPU for a given seed and config."""
    seed_everything(cell.seed)
    started = time.perf_counter()
    recipe = cell.recipe.recipe
    model = build_model(components, cell.architecture, data, device)
    attack = build_attack(components, cell.recipe.attack) if cell.recipe.attack else None
    defense_entry = components.defenses.get(cell.recipe.defense.factory)
    defense = defense_entry.factory(defense_entry.make_params(cell.recipe.defense.params), attack)
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay, nesterov=recipe.nesterov)
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, recipe.milestones, recipe.gamma)
    generator = torch.Generator().manual_seed(cell.seed)
    result = TrainResult(model)
    epochs = tqdm(range(recipe.epochs), desc=cell.describe(), leave=False, unit="epoch",
                  disable=None)
    for epoch in epochs:
        model.train()
        total, count = 0.0, 0
        for x, y in train_batches(data.train, recipe.batch_size, device, generator):
            optimizer.zero_grad(set_to_none=True)
            loss = defense.loss(model, x, y)
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"loss is {float(loss.detach())} at epoch {epoch + 1}; lower lr "
                                       "or add grad_clip to the recipe")
            loss.backward()
            if recipe.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
            optimizer.step()
            total += float(loss.detach()) * len(y)
            count += len(y)
        result.history.append({"epoch": epoch + 1, "loss": total / max(count, 1),
                               "lr": optimizer.param_groups[0]["lr"]})
        schedule.step()
        epochs.set_postfix(loss=f"{total / max(count, 1):.3f}")
    model.eval()
    result.seconds = time.perf_counter() - started
    return result


def save_checkpoint(model: nn.Module, path: Path) -> None:
    """Write safetensors atomically: a kill mid-write never leaves a truncated checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_model(model, str(tmp))
    os.replace(tmp, path)


def load_checkpoint(model: nn.Module, path: Path) -> nn.Module:
    load_model(model, str(path), device=str(next(model.parameters()).device))
    model.eval()
    return model
