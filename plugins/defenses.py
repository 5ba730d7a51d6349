"""Training methods: standard (clean cross-entropy) and PGD adversarial training (Madry et al.)."""

from __future__ import annotations

import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict

from harness import hookimpl


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StandardTraining:
    def loss(self, model, x, y):
        return F.cross_entropy(model(x), y)


class AdversarialTraining:
    """Cross-entropy on the training attack's examples (the engine crafts them in eval mode)."""

    def __init__(self, attack) -> None:
        self.attack = attack

    def loss(self, model, x, y):
        x_adv = self.attack(model, x, y)
        return F.cross_entropy(model(x_adv), y)


@hookimpl
def harness_register_defenses(registry):
    registry.add("standard", lambda params, attack: StandardTraining(), params=NoParams,
                 description="cross-entropy on clean examples")
    registry.add("pgd-at", lambda params, attack: AdversarialTraining(attack), params=NoParams,
                 needs_attack=True,
                 description="Madry PGD-AT: cross-entropy on the training attack's examples")
