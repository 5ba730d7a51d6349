"""Parameter models of the torchattacks attacks.

Field names, types, defaults and checks are part of every cell hash: change them only together
with the plugin's ``__version__``. Several rows share one model (NIFGSM uses MI-FGSM's).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from harness import Params, StepSize
from harness.toolkits import TARGET_HELP, IterativeParams, TargetedParams


class RandomStart(Params):
    random_start: bool = Field(default=True, description="Start from a uniform point of the ball.")


class Seeded(Params):
    seed: int = Field(default=0, description="The toolkit's own seed (it reseeds its RNG per call).")


class Restarts(Params):
    restarts: int = Field(default=1, ge=1, description="Restarts (on the examples not yet fooled).")


class IterativeTargeted(IterativeParams, TargetedParams):
    """BIM, RFGSM: steps and step size, targetable."""


class PGDParams(IterativeParams, RandomStart, TargetedParams):
    loss: Literal["ce", "margin"] = Field(
        default="ce", description='"ce": cross-entropy (torchattacks.PGD/PGDL2 unchanged). '
        '"margin": the Carlini-Wagner margin max_{j!=y} z_j - z_y ("CW-inf" with linf).')
    kappa: float = Field(default=0.0, ge=0, description="Margin loss only: confidence at which the "
                         "margin stops pushing (0 as in the CW-inf protocol).")

    @model_validator(mode="after")
    def _kappa_needs_margin(self) -> PGDParams:
        if self.kappa and self.loss != "margin":
            raise ValueError('kappa applies to loss = "margin" only')
        return self


class FFGSMParams(TargetedParams):
    step_size: StepSize | None = Field(
        default=None, description="Step from the random start; default 1.25*eps (Wong et al. 2020).")

    def alpha(self, eps: float) -> float:
        return self.step_size.absolute(eps) if self.step_size else 1.25 * eps


class MIFGSMParams(IterativeParams, TargetedParams):
    decay: float = Field(default=1.0, ge=0, description="Momentum decay factor mu.")


class DIFGSMParams(MIFGSMParams):
    decay: float = Field(default=0.0, ge=0, description="Momentum decay (0: DI-FGSM, 1: M-DI2-FGSM).")
    resize_rate: float = Field(default=0.9, gt=0, lt=1, description="Smallest resize of the input.")
    diversity_prob: float = Field(default=0.5, ge=0, le=1, description="Probability of a transform.")
    random_start: bool = Field(default=False, description="Start from a uniform point of the ball.")


class TIFGSMParams(DIFGSMParams):
    kernel: Literal["gaussian", "linear", "uniform"] = Field(
        default="gaussian", description="Translation-invariance smoothing kernel.")
    len_kernel: int = Field(default=15, ge=1, description="Kernel size.")
    nsig: float = Field(default=3.0, gt=0, description="Gaussian kernel radius in sigmas.")


class SINIFGSMParams(MIFGSMParams):
    scales: int = Field(default=5, ge=1, description="Scale copies x/2^i averaged per step (m).")


class VMIFGSMParams(MIFGSMParams):
    samples: int = Field(default=5, ge=1, description="Neighbours sampled for the variance (N).")
    beta: float = Field(default=1.5, gt=0, description="Neighbourhood radius in units of eps.")


class JitterParams(IterativeParams, RandomStart, TargetedParams):
    scale: float = Field(default=10.0, gt=0, description="Softmax temperature on normalised logits.")
    std: float = Field(default=0.1, ge=0, description="Std of the Gaussian jitter on the softmax.")


class EOTPGDParams(IterativeParams, RandomStart, TargetedParams):
    eot_iter: int = Field(default=2, ge=1, description="Gradients averaged per step (EOT).")


class UPGDParams(IterativeParams, TargetedParams):
    random_start: bool = Field(default=False, description="Start from a uniform point of the ball.")
    # torchattacks' 'margin' is left out: it has CW's negative-logit bug and, with its clamp,
    # gives an all-zero gradient once an example is fooled, which UPGD divides by (NaN).
    loss: Literal["ce", "dlr"] = Field(default="ce", description="Cross-entropy or DLR loss.")
    decay: float = Field(default=1.0, ge=0, description="Momentum decay factor.")
    eot_iter: int = Field(default=1, ge=1, description="Gradients averaged per step (EOT).")


class PGDRSParams(IterativeParams, TargetedParams):
    noise: Literal["gaussian", "uniform"] = Field(default="gaussian",
                                                  description="Smoothing noise distribution.")
    noise_sd: float = Field(default=0.5, gt=0, description="Smoothing noise std (or half-width).")
    noise_samples: int = Field(default=5, ge=1, description="Noise draws averaged per step.")


class APGDParams(Seeded, Restarts):
    steps: int = Field(default=100, ge=1, description="Iterations (AutoAttack: 100; torchattacks: 10).")
    loss: Literal["ce", "dlr"] = Field(default="ce", description="Cross-entropy or DLR loss.")
    eot_iter: int = Field(default=1, ge=1, description="Gradients averaged per step (EOT).")
    rho: float = Field(default=0.75, gt=0, lt=1, description="Step-size halving threshold.")


class APGDTParams(Seeded, Restarts):
    steps: int = Field(default=100, ge=1, description="Iterations per target class.")
    n_target_classes: int | None = Field(
        default=None, ge=1, description="Target classes tried (AutoAttack: 9); default all but y.")
    eot_iter: int = Field(default=1, ge=1, description="Gradients averaged per step (EOT).")
    rho: float = Field(default=0.75, gt=0, lt=1, description="Step-size halving threshold.")


class FABParams(Seeded, Restarts):
    steps: int = Field(default=100, ge=1, description="Iterations (AutoAttack: 100; torchattacks: 10).")
    # Only FAB-T (multi-targeted, as in AutoAttack): torchattacks' single-target mode indexes its
    # targets by position in the full batch after restarts shrink it, so targets get mixed up.
    multi_targeted: bool = Field(default=False, description="FAB-T: try the top target classes.")
    n_target_classes: int | None = Field(
        default=None, ge=1, description="FAB-T target classes (AutoAttack: 9); default all but y.")
    alpha_max: float = Field(default=0.1, gt=0, description="Maximum extrapolation step.")
    eta: float = Field(default=1.05, gt=0, description="Overshoot of the projection.")
    beta: float = Field(default=0.9, gt=0, description="Weight of the original point in the step.")


class SquareParams(Seeded, Restarts, TargetedParams):
    queries: int = Field(default=5000, ge=1, description="Query budget per restart (AutoAttack: 5000).")
    p_init: float = Field(default=0.8, gt=0, le=1, description="Initial fraction of pixels changed.")
    loss: Literal["margin", "ce"] = Field(default="margin", description="Margin or cross-entropy.")
    rescale_schedule: bool = Field(default=True, description="Scale the p schedule to the budget.")


class AutoAttackParams(Params):
    version: Literal["standard", "plus", "rand"] = Field(
        default="standard", description="standard: APGD-CE, APGD-T, FAB-T, Square; plus adds "
        "restarts and APGD-DLR, FAB; rand: APGD-CE and -DLR with EOT 20.")
    steps: int = Field(default=100, ge=1, description="APGD/APGD-T/FAB iterations (AutoAttack: 100; "
                       "torchattacks.AutoAttack leaves them at 10).")
    queries: int = Field(default=5000, ge=1, description="Square query budget.")
    seed: int = Field(default=0, description="Seed of every sub-attack.")


class SPSAParams(TargetedParams):
    steps: int = Field(default=100, ge=1, description="Adam iterations (torchattacks' default 1 is "
                       "nearly a no-op; Uesato et al. 2018 use 100+).")
    lr: float = Field(default=0.01, gt=0, description="Adam learning rate on the perturbation.")
    delta: float = Field(default=0.01, gt=0, description="Finite-difference radius.")
    samples: int = Field(default=128, ge=1, description="Random directions per gradient estimate.")
    max_batch_size: int = Field(default=64, ge=1, description="Directions evaluated at once.")


class PIFGSMParams(Params):
    steps: int = Field(default=10, ge=1, description="Iterations (step eps/steps, amplified).")
    amplification: float = Field(default=10.0, gt=0, description="Step amplification factor beta.")


class PIFGSMPPParams(PIFGSMParams, TargetedParams):
    project_factor: float = Field(default=0.8, gt=0, description="Weight of the patch projection.")


class CWParams(TargetedParams):
    c: float = Field(default=1.0, gt=0, description="Weight of the margin term (no binary search).")
    kappa: float = Field(default=0.0, ge=0, description="Confidence of the misclassification.")
    steps: int = Field(default=50, ge=1, description="Adam iterations (stops early if the loss rises).")
    lr: float = Field(default=0.01, gt=0, description="Adam learning rate in tanh space.")


class DeepFoolParams(Params):
    steps: int = Field(default=50, ge=1, description="Linearisation steps.")
    overshoot: float = Field(default=0.02, ge=0, description="Overshoot past the boundary.")


class EADParams(TargetedParams):
    # kappa is not exposed: EAD's compare() adds it to whole label columns, not per example.
    lr: float = Field(default=0.01, gt=0, description="ISTA learning rate.")
    binary_search_steps: int = Field(default=9, ge=1, description="Binary search steps over c.")
    max_iterations: int = Field(default=100, ge=1, description="Iterations per binary search step.")
    abort_early: bool = Field(default=True, description="Stop a search step when the loss stalls.")
    initial_const: float = Field(default=0.001, gt=0, description="Initial c.")
    beta: float = Field(default=0.001, gt=0, description="L1 weight of the elastic net.")

    @model_validator(mode="after")
    def _abort_early_needs_ten(self) -> EADParams:
        if self.abort_early and self.max_iterations < 10:  # the toolkit checks every max_iter // 10
            raise ValueError("abort_early checks the loss every max_iterations // 10 iterations: "
                             "use max_iterations >= 10 or abort_early = false")
        return self


class SparseFoolParams(Params):
    steps: int = Field(default=10, ge=1, description="Outer iterations.")
    lam: float = Field(default=3.0, gt=0, description="Boundary-point scaling (lambda).")
    overshoot: float = Field(default=0.02, ge=0, description="Overshoot past the boundary.")


class OnePixelParams(TargetedParams):
    pixels: int = Field(default=1, ge=1, description="Pixels changed (all channels of each).")
    steps: int = Field(default=10, ge=1, description="Differential-evolution generations.")
    popsize: int = Field(default=10, ge=1, description="Population multiplier.")
    inf_batch: int = Field(default=128, ge=1, description="Candidates per forward pass.")


class PixleParams(TargetedParams):
    x_dimensions: tuple[int | float, int | float] = Field(
        default=(2, 10), description="Patch width range: pixels (int) or fraction of width (float).")
    y_dimensions: tuple[int | float, int | float] = Field(
        default=(2, 10), description="Patch height range: pixels (int) or fraction of height.")
    pixel_mapping: Literal["random", "similarity", "similarity_random", "distance",
                           "distance_random"] = Field(default="random", description="Pixel mapping.")
    restarts: int = Field(default=20, ge=0, description="Restarts.")
    max_iterations: int = Field(default=10, ge=1, description="Patches tried per restart.")


class JSMAParams(Params):
    # JSMA is a targeted attack; torchattacks' untargeted default is (y + 1) % 10, i.e. "next".
    targeted: Literal["next", "random", "least-likely"] = Field(default="next", description=TARGET_HELP)
    theta: float = Field(default=1.0, description="Change per selected feature (sign = direction).")
    gamma: float = Field(default=0.1, gt=0, le=1, description="Largest fraction of features changed.")
