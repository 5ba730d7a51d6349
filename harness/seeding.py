"""One seed for every RNG a plugin may use (Python, NumPy, torch): ART draws from NumPy."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
