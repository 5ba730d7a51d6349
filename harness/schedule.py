"""Learning-rate schedules as a per-step factor of the recipe's lr (warm-up included).

Stepping every batch lets cyclic and cosine schedules be smooth, as the Fast-AT and
generalization-study recipes use them; multistep still changes at epoch boundaries.
"""

from __future__ import annotations

import math

from harness.specs import Recipe


def lr_factor(recipe: Recipe, step: int, steps_per_epoch: int) -> float:
    """Factor of ``recipe.lr`` for optimizer step ``step`` (0-based)."""
    t = (step + 1) / steps_per_epoch  # epochs done after this step
    epoch = step // steps_per_epoch
    if recipe.schedule == "cyclic":
        peak = recipe.cycle_peak * recipe.epochs
        return t / peak if t <= peak else max(0.0, (recipe.epochs - t) / (recipe.epochs - peak))
    warmup = min(1.0, t / recipe.warmup_epochs) if recipe.warmup_epochs else 1.0
    if recipe.schedule == "multistep":
        return warmup * recipe.gamma ** sum(epoch >= m for m in recipe.milestones)
    if recipe.schedule == "cosine":
        span = max(recipe.epochs - recipe.warmup_epochs, 1e-12)
        progress = min(max((t - recipe.warmup_epochs) / span, 0.0), 1.0)
        floor = recipe.min_lr / recipe.lr
        return warmup * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))
    return warmup
