"""The defenses' parameter models."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness import Params, StepSize


class NoParams(Params):
    pass


class TRADESParams(Params):
    beta: float = Field(default=6.0, ge=0, description="Weight of the KL robustness term "
                        "(1/lambda in Zhang et al. 2019; 6 on CIFAR-10).")


class MARTParams(Params):
    beta: float = Field(default=6.0, ge=0, description="Weight of the misclassification-aware KL "
                        "term (lambda in Wang et al. 2020; 6 on CIFAR-10).")


class ALPParams(Params):
    weight: float = Field(default=0.5, ge=0, description="Logit pairing weight (rcm --leverage 0.5).")
    clean_loss: bool = Field(default=True, description="Add CE on the clean batch (the mixed-batch "
                             "ALP of Kannan et al. and rcm); false pairs plain PGD-AT.")
    pairing: Literal["l2", "squared", "mse"] = Field(
        default="l2", description='"l2": mean ||z - z_adv||_2 (rcm); "squared": mean squared '
        'norm; "mse": mean over logits of the squared difference (Kannan et al. code).')


class FastATParams(Params):
    collapse_drop: float = Field(
        default=0.2, gt=0, le=1, description="Flag catastrophic overfitting when the epoch's probe "
        "robust accuracy falls this much (absolute) below the best earlier epoch (Wong et al.'s "
        "early-stopping threshold is 0.2).")
    collapse_floor: float = Field(
        default=0.0, ge=0, lt=1, description="Also flag when robust accuracy falls below this "
        "after an earlier epoch reached it; 0 turns the check off.")


class FreeATParams(Params):
    replays: int = Field(default=4, ge=1, description="m: optimizer steps per minibatch, each "
                         "also one signed-gradient step of the perturbation (Shafahi et al.: 8 "
                         "on CIFAR-10). Divide the epochs by m to keep the paper's budget.")
    step_size: StepSize = Field(default=StepSize(value=1.0, relative=True), description=(
        'Perturbation step per replay, absolute ("2/255") or relative ("eps"); the paper uses eps.'))


class AWPParams(Params):
    inner: Literal["pgd-at", "trades", "mart"] = Field(
        default="pgd-at", description="The training loss AWP perturbs the weights against.")
    gamma: float | None = Field(
        default=None, gt=0, description="Relative size of the weight perturbation per layer. "
        "Default: 0.01 for pgd-at (AT-AWP), 0.005 for trades and mart (TRADES-AWP), the "
        "defaults of the authors' code (csdongxian/AWP).")
    beta: float = Field(default=6.0, ge=0, description="TRADES/MART beta (unused by pgd-at).")
    warmup_epochs: int = Field(default=0, ge=0, description="Epochs trained with the inner loss "
                               "alone before the weights are perturbed (rcm's and the authors' "
                               "TRADES-AWP: 10).")

    def resolved_gamma(self) -> float:
        if self.gamma is not None:
            return self.gamma
        return 0.01 if self.inner == "pgd-at" else 0.005
