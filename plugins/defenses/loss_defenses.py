"""Defenses that only define ``loss(model, x, y)``: the engine takes the optimizer step.

Standard training, PGD-AT (Madry et al. 2018), TRADES (Zhang et al. 2019), MART (Wang et al.
2020), ALP (Kannan et al. 2018) and Fast-AT (Wong et al. 2020), which also watches for
catastrophic overfitting at each epoch's end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from harness import raise_flag

from .losses import alp_loss, mart_loss, trades_loss
from .params import ALPParams, FastATParams

AttackFn = Callable[[nn.Module, Tensor, Tensor], Tensor]


class StandardTraining:
    def loss(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(model(x), y)


class AdversarialTraining:
    """Cross-entropy on the training attack's examples (the engine crafts them in eval mode)."""

    def __init__(self, attack: AttackFn) -> None:
        self.attack = attack

    def loss(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        x_adv = self.attack(model, x, y)
        return F.cross_entropy(model(x_adv), y)


class TRADES:
    """TRADES: clean cross-entropy plus beta times the clean-to-adversarial KL."""

    def __init__(self, attack: AttackFn, beta: float) -> None:
        self.attack, self.beta = attack, beta

    def loss(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return trades_loss(model, x, self.attack(model, x, y), y, self.beta)


class MART:
    """MART: boosted cross-entropy on x_adv plus a KL term weighted by clean misclassification."""

    def __init__(self, attack: AttackFn, beta: float) -> None:
        self.attack, self.beta = attack, beta

    def loss(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return mart_loss(model, x, self.attack(model, x, y), y, self.beta)


class ALP:
    """Adversarial logit pairing: adversarial (and clean) CE plus a logit distance."""

    def __init__(self, attack: AttackFn, params: ALPParams) -> None:
        self.attack, self.params = attack, params

    def loss(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        p = self.params
        return alp_loss(model, x, self.attack(model, x, y), y, p.weight, p.clean_loss, p.pairing)


class FastAT(AdversarialTraining):
    """Fast-AT: PGD-AT's loss on a single random-start FGSM step (the recipe's ``ffgsm``
    attack), plus a detector of catastrophic overfitting.

    Catastrophic overfitting (Wong et al. 2020, Sec. 5) is a sudden collapse of multi-step
    robust accuracy while FGSM accuracy keeps rising. ``on_epoch_end`` reads the epoch's probe
    robust accuracy (``val_robust``, else ``train_robust``: the recipe's
    ``validation.attack``, which must be a PGD attack for this to mean anything) and raises the
    ``catastrophic-overfitting`` flag on a collapse.
    """

    def __init__(self, attack: AttackFn, params: FastATParams) -> None:
        super().__init__(attack)
        self.params = params
        self.history: list[tuple[int, float]] = []  # (epoch, probe robust accuracy)

    def on_epoch_end(self, model: nn.Module, record: dict[str, Any]) -> None:
        key = "val_robust" if "val_robust" in record else "train_robust"
        value = record.get(key)
        if value is None:
            return
        epoch = int(record.get("epoch", len(self.history) + 1))
        if self.history:
            best_epoch, best = max(self.history, key=lambda item: item[1])  # first best on ties
            floor = self.params.collapse_floor
            if best - value > self.params.collapse_drop or value < floor <= best:
                raise_flag("catastrophic-overfitting", (
                    f"epoch {epoch}: probe robust accuracy ({key}) fell to {value:.1%} from "
                    f"{best:.1%} at epoch {best_epoch}; single-step training collapsed. Evaluate "
                    'the best checkpoint (checkpoint = "best"), or lower the lr or the FGSM step'))
        self.history.append((epoch, float(value)))

    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = [(int(e), float(v)) for e, v in state["history"]]
