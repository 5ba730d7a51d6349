"""Parameter models of the ART attacks.

Field names, types, defaults and checks are part of every cell hash: change them only together
with the plugin's ``__version__``. APGD and ACG share one model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from harness import Params, StepSize
from harness.toolkits import TARGET_HELP, IterativeParams, Target, TargetedParams


class Batched(Params):
    batch_size: int = Field(default=128, ge=1, description="Examples ART processes at once (ART's "
                            "own default is 32, or 1 for CW/DeepFool/EAD/JSMA/NewtonFool).")


class Seeded(Params):
    seed: int | None = Field(
        default=None, description="None: ART draws from the global NumPy/random streams, which the "
        "harness seeds before every attack run. An integer reseeds them for each call (restored after).")


class FGSMParams(TargetedParams, Batched, Seeded):
    random_start: bool = Field(default=False, description="Step from a uniform random point of the "
                               "ball instead of x (ART num_random_init=1).")


class PGDParams(IterativeParams, TargetedParams, Batched, Seeded):
    random_start: bool = Field(default=True, description="Start from a uniform random point of the "
                               "eps ball (Madry et al.); false starts at x (ART's own default).")
    num_random_init: int = Field(default=1, ge=1, description="Random starts when random_start (ART "
                                 "num_random_init); later starts replace an example where they succeed.")

    @model_validator(mode="after")
    def _inits_need_random_start(self) -> PGDParams:
        if self.num_random_init > 1 and not self.random_start:
            raise ValueError("num_random_init > 1 needs random_start = true")
        return self

    def random_inits(self) -> int:
        return self.num_random_init if self.random_start else 0


class BIMParams(IterativeParams, TargetedParams, Batched):
    """BIM: steps and step size (ART max_iter, eps_step), targetable, batched."""


class MIMParams(IterativeParams, TargetedParams, Batched):
    decay: float = Field(default=1.0, ge=0, description="Momentum decay factor mu (Dong et al. 2018).")


class APGDParams(TargetedParams, Batched, Seeded):
    steps: int = Field(default=100, ge=1, description="Iterations per restart (AutoAttack: 100).")
    step_size: StepSize = Field(default=StepSize(value=2.0, relative=True),
                                description='Initial step (ART eps_step); default "2*eps" as in '
                                "Croce & Hein 2020 (ART's own default is an absolute 0.1).")
    restarts: int = Field(default=1, ge=1, description="Random starts (ART nb_random_init, default 5 "
                          "there); later ones attack only the examples still robust.")
    loss: Literal["ce", "dlr"] = Field(default="ce", description="Cross-entropy or difference of "
                                       "logits ratio (needs 3+ classes).")


class CWL2Params(TargetedParams, Batched):
    confidence: float = Field(default=0.0, ge=0, description="Margin kappa of the misclassification.")
    lr: float = Field(default=0.01, gt=0, description="Learning rate in tanh space.")
    binary_search_steps: int = Field(default=10, ge=1, description="Binary search steps over c.")
    steps: int = Field(default=10, ge=1, description="Iterations per search step (ART max_iter).")
    initial_const: float = Field(default=0.01, gt=0, description="Initial trade-off constant c.")
    max_halving: int = Field(default=5, ge=1, description="Line-search halvings of the step.")
    max_doubling: int = Field(default=5, ge=1, description="Line-search doublings of the step.")


class CWLinfParams(TargetedParams, Batched):
    confidence: float = Field(default=0.0, ge=0, description="Margin kappa of the misclassification.")
    lr: float = Field(default=0.01, gt=0, description="Adam learning rate in tanh space (each round "
                      "starts from x: a pixel moves at most about steps*lr/2).")
    steps: int = Field(default=10, ge=1, description="Adam iterations per (tau, c) round, each from x "
                       "(ART max_iter).")
    decrease_factor: float = Field(default=0.9, gt=0, lt=1, description="Shrink factor of tau.")
    initial_const: float = Field(default=1e-5, gt=0, description="Initial constant c.")
    largest_const: float = Field(default=20.0, gt=0, description="Largest constant c tried.")
    const_factor: float = Field(default=2.0, gt=1, description="Growth factor of c.")


class EADParams(TargetedParams, Batched):
    confidence: float = Field(default=0.0, ge=0, description="Margin kappa of the misclassification.")
    lr: float = Field(default=0.01, gt=0, description="ISTA learning rate.")
    binary_search_steps: int = Field(default=9, ge=1, description="Binary search steps over c.")
    steps: int = Field(default=100, ge=1, description="Iterations per search step (ART max_iter).")
    beta: float = Field(default=1e-3, gt=0, description="l1 weight of the elastic net.")
    initial_const: float = Field(default=1e-3, gt=0, description="Initial trade-off constant c.")
    decision_rule: Literal["EN", "L1", "L2"] = Field(
        default="EN", description="Distance that picks the best adversarial example.")


class DeepFoolParams(Batched):
    steps: int = Field(default=100, ge=1, description="Linearisation steps (ART max_iter).")
    overshoot: float = Field(default=1e-6, ge=0, description="Overshoot past the boundary (ART epsilon).")
    nb_grads: int = Field(default=10, ge=1, description="Top classes whose gradients are used.")


class NewtonFoolParams(Batched):
    steps: int = Field(default=100, ge=1, description="Newton steps (ART max_iter).")
    eta: float = Field(default=0.01, gt=0, description="Step bound relative to the input norm.")


class JSMAParams(Batched):
    # JSMA is a targeted attack: the labels handed to ART are targets, chosen here.
    targeted: Literal["random", "least-likely", "next"] = Field(default="random",
                                                                description=TARGET_HELP)
    theta: float = Field(default=0.1, description="Change per selected feature (sign = direction).")
    gamma: float = Field(default=1.0, gt=0, le=1, description="Largest fraction of features changed.")


class SquareParams(Batched, Seeded):
    queries: int = Field(default=5000, ge=1, description="Queries per restart (ART max_iter; its "
                         "default is 100, AutoAttack uses 5000).")
    p_init: float = Field(default=0.8, gt=0, le=1, description="Initial fraction of pixels changed.")
    restarts: int = Field(default=1, ge=1, description="Restarts on the examples not yet fooled.")


class HopSkipJumpParams(Batched, Seeded):
    steps: int = Field(default=50, ge=1, description="Iterations (ART max_iter).")
    max_eval: int = Field(default=10000, ge=1, description="Most queries per gradient estimate.")
    init_eval: int = Field(default=100, ge=1, description="Queries of the first gradient estimate.")
    init_size: int = Field(default=100, ge=1, description="Random draws to find a starting point.")


class BoundaryParams(Batched, Seeded):
    steps: int = Field(default=5000, ge=1, description="Iterations (ART max_iter).")
    delta: float = Field(default=0.01, gt=0, description="Initial orthogonal step.")
    epsilon: float = Field(default=0.01, gt=0, description="Initial step towards the original.")
    step_adapt: float = Field(default=0.667, gt=0, lt=1, description="Step adaptation factor.")
    num_trial: int = Field(default=25, ge=1, description="Trials per iteration.")
    sample_size: int = Field(default=20, ge=1, description="Samples per trial.")
    init_size: int = Field(default=100, ge=1, description="Random draws to find a starting point.")


class SimBAParams(Seeded):
    attack: Literal["dct", "px"] = Field(default="dct", description="Search basis: low-frequency DCT "
                                         "or pixels.")
    steps: int = Field(default=3000, ge=1, description="Directions tried, 2 queries each (ART max_iter).")
    step_size: float = Field(default=0.2, gt=0, description="Step along each direction (ART epsilon; "
                             "0.2 as in Guo et al. 2019).")
    order: Literal["random", "diag"] = Field(default="random", description="Pixel order (px only).")
    freq_dim: int = Field(default=4, ge=1, description="Initial DCT block size (dct only).")
    stride: int = Field(default=1, ge=1, description="DCT block growth (dct only).")
    targeted: Target = Field(default="none", description=TARGET_HELP)
