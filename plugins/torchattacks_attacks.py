"""Attacks from torchattacks 3.5: every one that applies to image classifiers, plus CW-inf.

Each registration declares the threat model the attack really respects: bounded attacks keep
every output inside the eps ball of their norm; minimum-norm attacks (CW, DeepFool, EAD, the
pixel attacks) may go further and are scored by the engine at the suite's budget in the norm
they minimise. torchattacks pins the model's device when an attack object is built, so one is
built per call (construction only stores settings); the engine handles eval mode, parameter
gradients and the budget check.

Toolkit quirks handled here (each also commented where it is handled):

- the targeted-mode setters print to stdout unless ``quiet=True``;
- APGD, APGDT, FAB, Square and AutoAttack reseed the *global* torch RNG on every call: they
  run inside ``torch.random.fork_rng`` so the rest of the evaluation keeps its own stream;
- APGDT, FAB and AutoAttack take ``n_classes`` (default 10) and JSMA hard-codes ``% 10``:
  the class count is read from the model's output width at call time;
- CW's margin ``f`` is wrong for negative logits (upstream PR #168) and its atanh start freezes
  pixels at exactly 0 or 1: both fixed in a small subclass;
- SPSA's and PIFGSMPP's targeted modes never ask for their targets (they would attack towards
  the true class): the wrapper computes them and passes them as labels;
- TIFGSM, PIFGSM and PIFGSMPP hard-code 3 channels: inputs with fewer channels are padded with
  channels the model never sees (exactly equivalent, see ``_PaddedChannels``);
- minimum-norm attacks can return NaN (DeepFool on a flat logit difference) or -1e-8 (EAD):
  non-finite examples are returned unperturbed, with a flag, and outputs are clamped to [0,1]
  (a range clamp never moves a point farther from x, so it cannot hide a budget violation).
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
from collections.abc import Callable
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from harness import StepSize, ThreatModel, hookimpl
from harness.toolkits import count_classes, finite_in_range, preserved_rng

__version__ = "1.1"  # 1.1: class counting forward in eval mode (BN statistics untouched)

Target = Literal["none", "random", "least-likely", "next"]
TARGET_HELP = ('"none": untargeted. "random": a random wrong class; "least-likely": the class the '
               'model ranks last on the clean input; "next": (y + 1) mod classes. Success is still '
               'scored untargeted (any wrong class).')


# --- parameter models ---------------------------------------------------------------------------


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Targeted(_Params):
    targeted: Target = Field(default="none", description=TARGET_HELP)


class _Iterative(_Params):
    steps: int = Field(default=10, ge=1, description="Iterations.")
    step_size: StepSize | None = Field(
        default=None, description='Absolute ("2/255") or relative ("eps/8"); default 2.5*eps/steps.')

    def alpha(self, eps: float) -> float:
        return self.step_size.absolute(eps) if self.step_size else 2.5 * eps / self.steps


class _RandomStart(_Params):
    random_start: bool = Field(default=True, description="Start from a uniform point of the ball.")


class _Seeded(_Params):
    seed: int = Field(default=0, description="The toolkit's own seed (it reseeds its RNG per call).")


class _Restarts(_Params):
    restarts: int = Field(default=1, ge=1, description="Restarts (on the examples not yet fooled).")


class FGSMParams(_Targeted):
    pass


class PGDParams(_Iterative, _RandomStart, _Targeted):
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


class BIMParams(_Iterative, _Targeted):
    pass


class RFGSMParams(_Iterative, _Targeted):
    pass


class TPGDParams(_Iterative):
    pass


class FFGSMParams(_Targeted):
    step_size: StepSize | None = Field(
        default=None, description="Step from the random start; default 1.25*eps (Wong et al. 2020).")

    def alpha(self, eps: float) -> float:
        return self.step_size.absolute(eps) if self.step_size else 1.25 * eps


class MIFGSMParams(_Iterative, _Targeted):
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


class JitterParams(_Iterative, _RandomStart, _Targeted):
    scale: float = Field(default=10.0, gt=0, description="Softmax temperature on normalised logits.")
    std: float = Field(default=0.1, ge=0, description="Std of the Gaussian jitter on the softmax.")


class EOTPGDParams(_Iterative, _RandomStart, _Targeted):
    eot_iter: int = Field(default=2, ge=1, description="Gradients averaged per step (EOT).")


class UPGDParams(_Iterative, _Targeted):
    random_start: bool = Field(default=False, description="Start from a uniform point of the ball.")
    # torchattacks' 'margin' is left out: it has CW's negative-logit bug and, with its clamp,
    # gives an all-zero gradient once an example is fooled, which UPGD divides by (NaN).
    loss: Literal["ce", "dlr"] = Field(default="ce", description="Cross-entropy or DLR loss.")
    decay: float = Field(default=1.0, ge=0, description="Momentum decay factor.")
    eot_iter: int = Field(default=1, ge=1, description="Gradients averaged per step (EOT).")


class PGDRSParams(_Iterative, _Targeted):
    noise: Literal["gaussian", "uniform"] = Field(default="gaussian",
                                                  description="Smoothing noise distribution.")
    noise_sd: float = Field(default=0.5, gt=0, description="Smoothing noise std (or half-width).")
    noise_samples: int = Field(default=5, ge=1, description="Noise draws averaged per step.")


class APGDParams(_Seeded, _Restarts):
    steps: int = Field(default=100, ge=1, description="Iterations (AutoAttack: 100; torchattacks: 10).")
    loss: Literal["ce", "dlr"] = Field(default="ce", description="Cross-entropy or DLR loss.")
    eot_iter: int = Field(default=1, ge=1, description="Gradients averaged per step (EOT).")
    rho: float = Field(default=0.75, gt=0, lt=1, description="Step-size halving threshold.")


class APGDTParams(_Seeded, _Restarts):
    steps: int = Field(default=100, ge=1, description="Iterations per target class.")
    n_target_classes: int | None = Field(
        default=None, ge=1, description="Target classes tried (AutoAttack: 9); default all but y.")
    eot_iter: int = Field(default=1, ge=1, description="Gradients averaged per step (EOT).")
    rho: float = Field(default=0.75, gt=0, lt=1, description="Step-size halving threshold.")


class FABParams(_Seeded, _Restarts):
    steps: int = Field(default=100, ge=1, description="Iterations (AutoAttack: 100; torchattacks: 10).")
    # Only FAB-T (multi-targeted, as in AutoAttack): torchattacks' single-target mode indexes its
    # targets by position in the full batch after restarts shrink it, so targets get mixed up.
    multi_targeted: bool = Field(default=False, description="FAB-T: try the top target classes.")
    n_target_classes: int | None = Field(
        default=None, ge=1, description="FAB-T target classes (AutoAttack: 9); default all but y.")
    alpha_max: float = Field(default=0.1, gt=0, description="Maximum extrapolation step.")
    eta: float = Field(default=1.05, gt=0, description="Overshoot of the projection.")
    beta: float = Field(default=0.9, gt=0, description="Weight of the original point in the step.")


class SquareParams(_Seeded, _Restarts, _Targeted):
    queries: int = Field(default=5000, ge=1, description="Query budget per restart (AutoAttack: 5000).")
    p_init: float = Field(default=0.8, gt=0, le=1, description="Initial fraction of pixels changed.")
    loss: Literal["margin", "ce"] = Field(default="margin", description="Margin or cross-entropy.")
    rescale_schedule: bool = Field(default=True, description="Scale the p schedule to the budget.")


class AutoAttackParams(_Params):
    version: Literal["standard", "plus", "rand"] = Field(
        default="standard", description="standard: APGD-CE, APGD-T, FAB-T, Square; plus adds "
        "restarts and APGD-DLR, FAB; rand: APGD-CE and -DLR with EOT 20.")
    steps: int = Field(default=100, ge=1, description="APGD/APGD-T/FAB iterations (AutoAttack: 100; "
                       "torchattacks.AutoAttack leaves them at 10).")
    queries: int = Field(default=5000, ge=1, description="Square query budget.")
    seed: int = Field(default=0, description="Seed of every sub-attack.")


class SPSAParams(_Targeted):
    steps: int = Field(default=100, ge=1, description="Adam iterations (torchattacks' default 1 is "
                       "nearly a no-op; Uesato et al. 2018 use 100+).")
    lr: float = Field(default=0.01, gt=0, description="Adam learning rate on the perturbation.")
    delta: float = Field(default=0.01, gt=0, description="Finite-difference radius.")
    samples: int = Field(default=128, ge=1, description="Random directions per gradient estimate.")
    max_batch_size: int = Field(default=64, ge=1, description="Directions evaluated at once.")


class PIFGSMParams(_Params):
    steps: int = Field(default=10, ge=1, description="Iterations (step eps/steps, amplified).")
    amplification: float = Field(default=10.0, gt=0, description="Step amplification factor beta.")


class PIFGSMPPParams(PIFGSMParams, _Targeted):
    project_factor: float = Field(default=0.8, gt=0, description="Weight of the patch projection.")


class CWParams(_Targeted):
    c: float = Field(default=1.0, gt=0, description="Weight of the margin term (no binary search).")
    kappa: float = Field(default=0.0, ge=0, description="Confidence of the misclassification.")
    steps: int = Field(default=50, ge=1, description="Adam iterations (stops early if the loss rises).")
    lr: float = Field(default=0.01, gt=0, description="Adam learning rate in tanh space.")


class DeepFoolParams(_Params):
    steps: int = Field(default=50, ge=1, description="Linearisation steps.")
    overshoot: float = Field(default=0.02, ge=0, description="Overshoot past the boundary.")


class EADParams(_Targeted):
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


class SparseFoolParams(_Params):
    steps: int = Field(default=10, ge=1, description="Outer iterations.")
    lam: float = Field(default=3.0, gt=0, description="Boundary-point scaling (lambda).")
    overshoot: float = Field(default=0.02, ge=0, description="Overshoot past the boundary.")


class OnePixelParams(_Targeted):
    pixels: int = Field(default=1, ge=1, description="Pixels changed (all channels of each).")
    steps: int = Field(default=10, ge=1, description="Differential-evolution generations.")
    popsize: int = Field(default=10, ge=1, description="Population multiplier.")
    inf_batch: int = Field(default=128, ge=1, description="Candidates per forward pass.")


class PixleParams(_Targeted):
    x_dimensions: tuple[int | float, int | float] = Field(
        default=(2, 10), description="Patch width range: pixels (int) or fraction of width (float).")
    y_dimensions: tuple[int | float, int | float] = Field(
        default=(2, 10), description="Patch height range: pixels (int) or fraction of height.")
    pixel_mapping: Literal["random", "similarity", "similarity_random", "distance",
                           "distance_random"] = Field(default="random", description="Pixel mapping.")
    restarts: int = Field(default=20, ge=0, description="Restarts.")
    max_iterations: int = Field(default=10, ge=1, description="Patches tried per restart.")


class JSMAParams(_Params):
    # JSMA is a targeted attack; torchattacks' untargeted default is (y + 1) % 10, i.e. "next".
    targeted: Literal["next", "random", "least-likely"] = Field(default="next", description=TARGET_HELP)
    theta: float = Field(default=1.0, description="Change per selected feature (sign = direction).")
    gamma: float = Field(default=0.1, gt=0, le=1, description="Largest fraction of features changed.")


# --- running a torchattacks object under the harness contract --------------------------------


class _PaddedChannels(nn.Module):
    """Feeds the first ``channels`` of a 3-channel input to a model with fewer channels.

    The padding channels get a zero gradient, so a depthwise (per-channel) attack moves only
    the real ones, and the per-example scalings it applies only rescale the update: on the real
    channels it is exactly the attack on the original input.
    """

    def __init__(self, model: nn.Module, channels: int) -> None:
        super().__init__()
        self.model, self.channels = model, channels
        # torchattacks calls .train() afterwards when it found the wrapper in training mode
        self.training = model.training

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x[:, : self.channels])


def _set_targets(attack: Any, targeted: str, num_classes: int) -> None:
    """Switch a torchattacks object to a targeted mode without its stdout messages."""
    if targeted == "random":
        attack.set_mode_targeted_random(quiet=True)
    elif targeted == "least-likely":
        attack.set_mode_targeted_least_likely(kth_min=1, quiet=True)
    elif targeted == "next":
        attack.set_mode_targeted_by_function(lambda x, y: (y + 1) % num_classes, quiet=True)


Builder = Callable[[nn.Module, int], Any]


class ToolkitAttack:
    """``attack(model, x, y)`` around one torchattacks class, built per call by ``build``.

    ``build(model, num_classes)`` returns the configured torchattacks object; the class count
    is measured (one forward) only when the attack or its target mode needs it.
    """

    def __init__(self, name: str, build: Builder, *, targeted: str = "none",
                 needs_classes: bool = False, min_classes: int = 2, reseeds: bool = False,
                 three_channels: bool = False, targets_as_labels: bool = False) -> None:
        self.name, self.build, self.targeted = name, build, targeted
        self.needs_classes, self.min_classes = needs_classes, min_classes
        self.reseeds, self.three_channels = reseeds, three_channels
        self.targets_as_labels = targets_as_labels

    def input_problem(self, input_shape: tuple[int, ...], num_classes: int) -> str | None:
        """Why this attack cannot run on such inputs (asked by ``harness validate`` too)."""
        if num_classes < self.min_classes:
            return (f"{self.name} needs a model with at least {self.min_classes} classes, "
                    f"not {num_classes}")
        if self.three_channels and input_shape[0] > 3:
            return (f"{self.name}: torchattacks hard-codes 3 input channels (its depthwise "
                    f"kernels); inputs with {input_shape[0]} are not supported")
        return None

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        num_classes = 0  # measured (one forward) only when something depends on it
        if self.needs_classes or self.targeted == "next" or self.min_classes > 2:
            num_classes = count_classes(model, x)
        problem = self.input_problem(tuple(x.shape[1:]), num_classes or self.min_classes)
        if problem:
            raise ValueError(problem)
        net, inputs = model, x
        if self.three_channels and x.shape[1] != 3:
            net = _PaddedChannels(model, x.shape[1])
            pad = x.new_zeros(x.shape[0], 3 - x.shape[1], *x.shape[2:])
            inputs = torch.cat([x, pad], dim=1)
        # a parameter-free model makes the toolkit print "Failed to set device" at construction
        with contextlib.redirect_stdout(io.StringIO()):
            attack = self.build(net, num_classes)
        if attack.device is None:
            attack.set_device(x.device)
        _set_targets(attack, self.targeted, num_classes)
        labels = y
        if self.targets_as_labels and self.targeted != "none":
            labels = attack.get_target_label(inputs, y)
        with preserved_rng(x.device) if self.reseeds else contextlib.nullcontext():
            x_adv = attack(inputs, labels)
        return finite_in_range(x, x_adv[:, : x.shape[1]], self.name)


# --- CW-inf (PGD with the margin loss) and a corrected CW ---------------------------------------


def _margin_objective(logits: torch.Tensor, labels: torch.Tensor, kappa: float, targeted: bool
                      ) -> torch.Tensor:
    """Carlini-Wagner margin to *ascend*, summed over the batch.

    Untargeted: -max(z_y - max_{j!=y} z_j, -kappa); towards target t: -max(max_{j!=t} z_j - z_t,
    -kappa). With kappa = 0 it is RobustWRN's CW-inf loss, -relu(z_y - z_other).
    """
    own = logits.gather(1, labels[:, None]).squeeze(1)
    mask = nn.functional.one_hot(labels, logits.shape[1]).bool()
    other = logits.masked_fill(mask, -math.inf).amax(dim=1)
    gap = other - own if targeted else own - other
    return -gap.clamp(min=-kappa).sum()


@functools.cache
def _margin_pgd_classes() -> tuple[type, type]:
    """torchattacks.PGD and PGDL2 with the margin loss in place of cross-entropy.

    Only the loss differs: the start, step and projection lines are the toolkit's own.
    """
    import torchattacks

    class _MarginLoop:
        def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            images = images.clone().detach().to(self.device)
            labels = labels.clone().detach().to(self.device)
            if self.targeted:
                labels = self.get_target_label(images, labels)
            adv_images = self._start(images)
            for _ in range(self.steps):
                adv_images.requires_grad = True
                cost = _margin_objective(self.get_logits(adv_images), labels, self.kappa,
                                         self.targeted)
                grad = torch.autograd.grad(cost, adv_images, retain_graph=False,
                                           create_graph=False)[0]
                adv_images = self._step(images, adv_images.detach(), grad)
            return adv_images

    class MarginPGD(_MarginLoop, torchattacks.PGD):
        def __init__(self, model: nn.Module, kappa: float = 0.0, **kwargs: Any) -> None:
            super().__init__(model, **kwargs)
            self.kappa = kappa

        def _start(self, images: torch.Tensor) -> torch.Tensor:
            adv_images = images.clone().detach()
            if self.random_start:
                adv_images = adv_images + torch.empty_like(adv_images).uniform_(-self.eps, self.eps)
                adv_images = torch.clamp(adv_images, min=0, max=1).detach()
            return adv_images

        def _step(self, images: torch.Tensor, adv_images: torch.Tensor, grad: torch.Tensor
                  ) -> torch.Tensor:
            adv_images = adv_images + self.alpha * grad.sign()
            delta = torch.clamp(adv_images - images, min=-self.eps, max=self.eps)
            return torch.clamp(images + delta, min=0, max=1).detach()

    class MarginPGDL2(_MarginLoop, torchattacks.PGDL2):
        def __init__(self, model: nn.Module, kappa: float = 0.0, **kwargs: Any) -> None:
            super().__init__(model, **kwargs)
            self.kappa = kappa

        def _start(self, images: torch.Tensor) -> torch.Tensor:
            adv_images = images.clone().detach()
            if self.random_start:
                delta = torch.empty_like(adv_images).normal_()
                n = delta.view(adv_images.size(0), -1).norm(p=2, dim=1).view(-1, 1, 1, 1)
                r = torch.zeros_like(n).uniform_(0, 1)
                delta *= r / n * self.eps
                adv_images = torch.clamp(adv_images + delta, min=0, max=1).detach()
            return adv_images

        def _step(self, images: torch.Tensor, adv_images: torch.Tensor, grad: torch.Tensor
                  ) -> torch.Tensor:
            batch = len(images)
            grad_norms = torch.norm(grad.view(batch, -1), p=2, dim=1) + self.eps_for_division
            adv_images = adv_images + self.alpha * grad / grad_norms.view(batch, 1, 1, 1)
            delta = adv_images - images
            factor = self.eps / torch.norm(delta.view(batch, -1), p=2, dim=1)
            factor = torch.min(factor, torch.ones_like(factor))
            return torch.clamp(images + delta * factor.view(-1, 1, 1, 1), min=0, max=1).detach()

    return MarginPGD, MarginPGDL2


@functools.cache
def _fixed_cw_class() -> type:
    import torchattacks

    class FixedCW(torchattacks.CW):
        """torchattacks.CW with two fixes; the optimisation is otherwise the toolkit's."""

        def f(self, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            # upstream takes max((1-onehot)*z) and max(onehot*z): with negative logits the zeros
            # win and the margin is wrong (torchattacks PR #168). Mask with -inf instead.
            mask = nn.functional.one_hot(labels, outputs.shape[1]).bool()
            real = outputs.gather(1, labels[:, None]).squeeze(1)
            other = outputs.masked_fill(mask, -math.inf).amax(dim=1)
            gap = other - real if self.targeted else real - other
            return torch.clamp(gap, min=-self.kappa)

        def inverse_tanh_space(self, x: torch.Tensor) -> torch.Tensor:
            # pixels at exactly 0 or 1 map to atanh(±1) = ±inf, where tanh has no gradient: they
            # could never move. Carlini & Wagner's code scales by 0.999999 for this reason.
            return self.atanh(torch.clamp(x * 2 - 1, min=-1, max=1) * 0.999999)

    return FixedCW


# --- factories ----------------------------------------------------------------------------------


def fgsm(params: FGSMParams, threat: ThreatModel) -> ToolkitAttack:
    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        return torchattacks.FGSM(model, eps=threat.eps)

    return ToolkitAttack("fgsm", build, targeted=params.targeted)


def pgd(params: PGDParams, threat: ThreatModel) -> ToolkitAttack:
    """PGD (linf) or PGD-L2; ``loss = "margin"`` is the CW-inf protocol (PGD on the CW margin)."""
    alpha = params.alpha(threat.eps)

    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        settings = dict(eps=threat.eps, alpha=alpha, steps=params.steps,
                        random_start=params.random_start)
        if params.loss == "margin":
            margin_pgd, margin_pgdl2 = _margin_pgd_classes()
            cls = margin_pgd if threat.norm == "linf" else margin_pgdl2
            return cls(model, kappa=params.kappa, **settings)
        cls = torchattacks.PGD if threat.norm == "linf" else torchattacks.PGDL2
        return cls(model, **settings)

    name = "pgd" if threat.norm == "linf" else "pgdl2"
    return ToolkitAttack(name, build, targeted=params.targeted)


def bim(params: BIMParams, threat: ThreatModel) -> ToolkitAttack:
    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        return torchattacks.BIM(model, eps=threat.eps, alpha=params.alpha(threat.eps),
                                steps=params.steps)

    return ToolkitAttack("bim", build, targeted=params.targeted)


def rfgsm(params: RFGSMParams, threat: ThreatModel) -> ToolkitAttack:
    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        return torchattacks.RFGSM(model, eps=threat.eps, alpha=params.alpha(threat.eps),
                                  steps=params.steps)

    return ToolkitAttack("rfgsm", build, targeted=params.targeted)


def ffgsm(params: FFGSMParams, threat: ThreatModel) -> ToolkitAttack:
    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        return torchattacks.FFGSM(model, eps=threat.eps, alpha=params.alpha(threat.eps))

    return ToolkitAttack("ffgsm", build, targeted=params.targeted)


def tpgd(params: TPGDParams, threat: ThreatModel) -> ToolkitAttack:
    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        return torchattacks.TPGD(model, eps=threat.eps, alpha=params.alpha(threat.eps),
                                 steps=params.steps)

    return ToolkitAttack("tpgd", build)


def mifgsm(params: MIFGSMParams, threat: ThreatModel) -> ToolkitAttack:
    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        return torchattacks.MIFGSM(model, eps=threat.eps, alpha=params.alpha(threat.eps),
                                   steps=params.steps, decay=params.decay)

    return ToolkitAttack("mifgsm", build, targeted=params.targeted)


def difgsm(params: DIFGSMParams, threat: ThreatModel) -> ToolkitAttack:
    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        return torchattacks.DIFGSM(
            model, eps=threat.eps, alpha=params.alpha(threat.eps), steps=params.steps,
            decay=params.decay, resize_rate=params.resize_rate,
            diversity_prob=params.diversity_prob, random_start=params.random_start)

    return ToolkitAttack("difgsm", build, targeted=params.targeted)


def tifgsm(params: TIFGSMParams, threat: ThreatModel) -> ToolkitAttack:
    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        return torchattacks.TIFGSM(
            model, eps=threat.eps, alpha=params.alpha(threat.eps), steps=params.steps,
            decay=params.decay, kernel_name=params.kernel, len_kernel=params.len_kernel,
            nsig=params.nsig, resize_rate=params.resize_rate,
            diversity_prob=params.diversity_prob, random_start=params.random_start)

    return ToolkitAttack("tifgsm", build, targeted=params.targeted, three_channels=True)


def nifgsm(params: MIFGSMParams, threat: ThreatModel) -> ToolkitAttack:
    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        return torchattacks.NIFGSM(model, eps=threat.eps, alpha=params.alpha(threat.eps),
                                   steps=params.steps, decay=params.decay)

    return ToolkitAttack("nifgsm", build, targeted=params.targeted)


def sinifgsm(params: SINIFGSMParams, threat: ThreatModel) -> ToolkitAttack:
    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        return torchattacks.SINIFGSM(model, eps=threat.eps, alpha=params.alpha(threat.eps),
                                     steps=params.steps, decay=params.decay, m=params.scales)

    return ToolkitAttack("sinifgsm", build, targeted=params.targeted)


def vmifgsm(params: VMIFGSMParams, threat: ThreatModel) -> ToolkitAttack:
    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        return torchattacks.VMIFGSM(model, eps=threat.eps, alpha=params.alpha(threat.eps),
                                    steps=params.steps, decay=params.decay, N=params.samples,
                                    beta=params.beta)

    return ToolkitAttack("vmifgsm", build, targeted=params.targeted)


def vnifgsm(params: VMIFGSMParams, threat: ThreatModel) -> ToolkitAttack:
    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        return torchattacks.VNIFGSM(model, eps=threat.eps, alpha=params.alpha(threat.eps),
                                    steps=params.steps, decay=params.decay, N=params.samples,
                                    beta=params.beta)

    return ToolkitAttack("vnifgsm", build, targeted=params.targeted)


def jitter(params: JitterParams, threat: ThreatModel) -> ToolkitAttack:
    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        return torchattacks.Jitter(model, eps=threat.eps, alpha=params.alpha(threat.eps),
                                   steps=params.steps, scale=params.scale, std=params.std,
                                   random_start=params.random_start)

    return ToolkitAttack("jitter", build, targeted=params.targeted)


def eotpgd(params: EOTPGDParams, threat: ThreatModel) -> ToolkitAttack:
    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        return torchattacks.EOTPGD(model, eps=threat.eps, alpha=params.alpha(threat.eps),
                                   steps=params.steps, eot_iter=params.eot_iter,
                                   random_start=params.random_start)

    return ToolkitAttack("eotpgd", build, targeted=params.targeted)


def upgd(params: UPGDParams, threat: ThreatModel) -> ToolkitAttack:
    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        return torchattacks.UPGD(model, eps=threat.eps, alpha=params.alpha(threat.eps),
                                 steps=params.steps, random_start=params.random_start,
                                 loss=params.loss, decay=params.decay, eot_iter=params.eot_iter)

    # DLR reads the 3rd (untargeted) or 4th (targeted) largest logit
    min_classes = 2 if params.loss == "ce" else 3 if params.targeted == "none" else 4
    return ToolkitAttack("upgd", build, targeted=params.targeted, min_classes=min_classes)


def pgdrs(params: PGDRSParams, threat: ThreatModel) -> ToolkitAttack:
    """PGD against a Gaussian-smoothed classifier (Salman et al. 2019), linf or l2."""

    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        cls = torchattacks.PGDRS if threat.norm == "linf" else torchattacks.PGDRSL2
        # the toolkit spells the Gaussian noise type "guassian"
        noise = "guassian" if params.noise == "gaussian" else "uniform"
        return cls(model, eps=threat.eps, alpha=params.alpha(threat.eps), steps=params.steps,
                   noise_type=noise, noise_sd=params.noise_sd,
                   noise_batch_size=params.noise_samples)

    name = "pgdrs" if threat.norm == "linf" else "pgdrsl2"
    return ToolkitAttack(name, build, targeted=params.targeted)


def apgd(params: APGDParams, threat: ThreatModel) -> ToolkitAttack:
    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        return torchattacks.APGD(model, norm=_NORM_NAMES[threat.norm], eps=threat.eps,
                                 steps=params.steps, n_restarts=params.restarts, seed=params.seed,
                                 loss=params.loss, eot_iter=params.eot_iter, rho=params.rho)

    # DLR divides by z_(1) - z_(3): it needs 3 classes
    return ToolkitAttack("apgd", build, reseeds=True, min_classes=3 if params.loss == "dlr" else 2)


def apgdt(params: APGDTParams, threat: ThreatModel) -> ToolkitAttack:
    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        attack = torchattacks.APGDT(model, norm=_NORM_NAMES[threat.norm], eps=threat.eps,
                                    steps=params.steps, n_restarts=params.restarts,
                                    seed=params.seed, eot_iter=params.eot_iter, rho=params.rho,
                                    n_classes=num_classes)
        attack.n_target_classes = min(params.n_target_classes or num_classes, num_classes - 1)
        return attack

    # the targeted DLR loss reads the 4th largest logit
    return ToolkitAttack("apgdt", build, needs_classes=True, min_classes=4, reseeds=True)


def fab(params: FABParams, threat: ThreatModel) -> ToolkitAttack:
    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        attack = torchattacks.FAB(model, norm=_NORM_NAMES[threat.norm], eps=threat.eps,
                                  steps=params.steps, n_restarts=params.restarts,
                                  alpha_max=params.alpha_max, eta=params.eta, beta=params.beta,
                                  seed=params.seed, multi_targeted=params.multi_targeted,
                                  n_classes=num_classes)
        attack.n_target_classes = min(params.n_target_classes or num_classes, num_classes - 1)
        return attack

    return ToolkitAttack("fab", build, needs_classes=True, reseeds=True)


def square(params: SquareParams, threat: ThreatModel) -> ToolkitAttack:
    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        return torchattacks.Square(model, norm=_NORM_NAMES[threat.norm], eps=threat.eps,
                                   n_queries=params.queries, n_restarts=params.restarts,
                                   p_init=params.p_init, loss=params.loss,
                                   resc_schedule=params.rescale_schedule, seed=params.seed)

    return ToolkitAttack("square", build, targeted=params.targeted, reseeds=True)


def autoattack(params: AutoAttackParams, threat: ThreatModel) -> ToolkitAttack:
    """torchattacks.AutoAttack with AutoAttack's own iteration counts restored."""

    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        attack = torchattacks.AutoAttack(model, norm=_NORM_NAMES[threat.norm], eps=threat.eps,
                                         version=params.version, n_classes=num_classes,
                                         seed=params.seed)
        for sub in attack._autoattack.attacks:  # the sub-attacks read these at call time
            if isinstance(sub, torchattacks.APGD | torchattacks.APGDT | torchattacks.FAB):
                sub.steps = params.steps
            if isinstance(sub, torchattacks.Square):
                sub.n_queries = params.queries
        return attack

    min_classes = 3 if params.version == "rand" else 4  # DLR / targeted DLR
    return ToolkitAttack("autoattack-ta", build, needs_classes=True, min_classes=min_classes,
                         reseeds=True)


def spsa(params: SPSAParams, threat: ThreatModel) -> ToolkitAttack:
    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        return torchattacks.SPSA(model, eps=threat.eps, delta=params.delta, lr=params.lr,
                                 nb_iter=params.steps, nb_sample=params.samples,
                                 max_batch_size=params.max_batch_size)

    # SPSA's forward never asks for its targets: they are computed here and passed as labels
    return ToolkitAttack("spsa", build, targeted=params.targeted, targets_as_labels=True)


def pifgsm(params: PIFGSMParams, threat: ThreatModel) -> ToolkitAttack:
    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        return torchattacks.PIFGSM(model, max_epsilon=threat.eps, num_iter_set=params.steps,
                                   amplification=params.amplification)

    return ToolkitAttack("pifgsm", build, three_channels=True)


def pifgsmpp(params: PIFGSMPPParams, threat: ThreatModel) -> ToolkitAttack:
    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        return torchattacks.PIFGSMPP(model, max_epsilon=threat.eps, num_iter_set=params.steps,
                                     amplification=params.amplification,
                                     project_factor=params.project_factor)

    # like SPSA, PIFGSMPP's forward never asks for its targets: computed here, passed as labels
    return ToolkitAttack("pifgsmpp", build, targeted=params.targeted, three_channels=True,
                         targets_as_labels=True)


def cw(params: CWParams, threat: ThreatModel) -> ToolkitAttack:
    def build(model: nn.Module, num_classes: int) -> Any:
        return _fixed_cw_class()(model, c=params.c, kappa=params.kappa, steps=params.steps,
                                 lr=params.lr)

    return ToolkitAttack("cw", build, targeted=params.targeted)


def deepfool(params: DeepFoolParams, threat: ThreatModel) -> ToolkitAttack:
    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        return torchattacks.DeepFool(model, steps=params.steps, overshoot=params.overshoot)

    return ToolkitAttack("deepfool", build)


def _ead(class_name: str) -> Callable[[EADParams, ThreatModel], ToolkitAttack]:
    def factory(params: EADParams, threat: ThreatModel) -> ToolkitAttack:
        def build(model: nn.Module, num_classes: int) -> Any:
            import torchattacks

            return getattr(torchattacks, class_name)(
                model, lr=params.lr, binary_search_steps=params.binary_search_steps,
                max_iterations=params.max_iterations, abort_early=params.abort_early,
                initial_const=params.initial_const, beta=params.beta)

        return ToolkitAttack(class_name.lower(), build, targeted=params.targeted)

    return factory


eadl1, eaden = _ead("EADL1"), _ead("EADEN")


def sparsefool(params: SparseFoolParams, threat: ThreatModel) -> ToolkitAttack:
    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        return torchattacks.SparseFool(model, steps=params.steps, lam=params.lam,
                                       overshoot=params.overshoot)

    return ToolkitAttack("sparsefool", build)


def onepixel(params: OnePixelParams, threat: ThreatModel) -> ToolkitAttack:
    """Differential evolution over pixel positions and values (NumPy's global RNG)."""

    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        return torchattacks.OnePixel(model, pixels=params.pixels, steps=params.steps,
                                     popsize=params.popsize, inf_batch=params.inf_batch)

    return ToolkitAttack("onepixel", build, targeted=params.targeted)


def pixle(params: PixleParams, threat: ThreatModel) -> ToolkitAttack:
    """Moves patches of pixels around (NumPy's global RNG); only model outputs are used."""

    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        # update_each_iteration is not offered: the toolkit asserts a batch of one for it
        return torchattacks.Pixle(model, x_dimensions=params.x_dimensions,
                                  y_dimensions=params.y_dimensions,
                                  pixel_mapping=params.pixel_mapping, restarts=params.restarts,
                                  max_iterations=params.max_iterations)

    return ToolkitAttack("pixle", build, targeted=params.targeted)


def jsma(params: JSMAParams, threat: ThreatModel) -> ToolkitAttack:
    def build(model: nn.Module, num_classes: int) -> Any:
        import torchattacks

        return torchattacks.JSMA(model, theta=params.theta, gamma=params.gamma)

    # always a targeted mode: the toolkit's own untargeted default is (y + 1) % 10, which
    # indexes past the logits of a model with fewer than 10 classes
    return ToolkitAttack("jsma", build, targeted=params.targeted)


_NORM_NAMES = {"linf": "Linf", "l2": "L2"}


@hookimpl
def harness_register_attacks(registry):
    add = registry.add
    # --- linf, bounded: the FGSM family ---
    add("fgsm", fgsm, params=FGSMParams, norms=["linf"],
        description="torchattacks.FGSM: one signed-gradient step of size eps (Goodfellow et al. 2015)")
    add("bim", bim, params=BIMParams, norms=["linf"], test_params={"steps": 2},
        description="torchattacks.BIM: iterative FGSM without random start (Kurakin et al. 2017)")
    add("rfgsm", rfgsm, params=RFGSMParams, norms=["linf"], test_params={"steps": 2},
        description="torchattacks.RFGSM: random signed step, then FGSM steps (Tramer et al. 2018)")
    add("ffgsm", ffgsm, params=FFGSMParams, norms=["linf"],
        description="torchattacks.FFGSM: uniform random start + one FGSM step (Wong et al. 2020)")
    add("mifgsm", mifgsm, params=MIFGSMParams, norms=["linf"], test_params={"steps": 2},
        description="torchattacks.MIFGSM: momentum iterative FGSM, MIM (Dong et al. 2018)")
    add("difgsm", difgsm, params=DIFGSMParams, norms=["linf"], test_params={"steps": 2},
        description="torchattacks.DIFGSM: input-diversity (resize+pad) iterative FGSM (Xie et al. 2019)")
    add("tifgsm", tifgsm, params=TIFGSMParams, norms=["linf"],
        test_params={"steps": 2, "len_kernel": 3},
        description="torchattacks.TIFGSM: translation-invariant DI-FGSM (Dong et al. 2019); <=3 channels")
    add("nifgsm", nifgsm, params=MIFGSMParams, norms=["linf"], test_params={"steps": 2},
        description="torchattacks.NIFGSM: Nesterov momentum iterative FGSM (Lin et al. 2020)")
    add("sinifgsm", sinifgsm, params=SINIFGSMParams, norms=["linf"],
        test_params={"steps": 2, "scales": 2},
        description="torchattacks.SINIFGSM: scale-invariant NI-FGSM (Lin et al. 2020)")
    add("vmifgsm", vmifgsm, params=VMIFGSMParams, norms=["linf"],
        test_params={"steps": 2, "samples": 2},
        description="torchattacks.VMIFGSM: variance-tuned MI-FGSM (Wang & He 2021)")
    add("vnifgsm", vnifgsm, params=VMIFGSMParams, norms=["linf"],
        test_params={"steps": 2, "samples": 2},
        description="torchattacks.VNIFGSM: variance-tuned NI-FGSM (Wang & He 2021)")
    add("pifgsm", pifgsm, params=PIFGSMParams, norms=["linf"], test_params={"steps": 2},
        description="torchattacks.PIFGSM: patch-wise iterative FGSM (Gao et al. 2020); <=3 channels")
    add("pifgsmpp", pifgsmpp, params=PIFGSMPPParams, norms=["linf"], test_params={"steps": 2},
        description="torchattacks.PIFGSMPP: patch-wise++ iterative FGSM (Gao et al. 2021); <=3 channels")
    # --- PGD family ---
    add("pgd", pgd, params=PGDParams, norms=["linf"], test_params={"steps": 2},
        description='torchattacks.PGD: PGD in the linf ball, uniform random start; loss = "margin" '
                    "is CW-inf")
    add("pgdl2", pgd, params=PGDParams, norms=["l2"], test_params={"steps": 2},
        description="torchattacks.PGDL2: PGD in the l2 ball (Madry et al. 2018)")
    add("tpgd", tpgd, params=TPGDParams, norms=["linf"], test_params={"steps": 2},
        description="torchattacks.TPGD: PGD on the TRADES KL loss (Zhang et al. 2019)")
    add("eotpgd", eotpgd, params=EOTPGDParams, norms=["linf"], test_params={"steps": 2},
        description="torchattacks.EOTPGD: PGD with gradients averaged over eot_iter passes "
                    "(Athalye et al. 2018)")
    add("upgd", upgd, params=UPGDParams, norms=["linf"], test_params={"steps": 2},
        description="torchattacks.UPGD: PGD with momentum, CE or DLR loss and EOT")
    add("jitter", jitter, params=JitterParams, norms=["linf"], test_params={"steps": 2},
        description="torchattacks.Jitter: PGD on a jittered softmax loss (Schwinn et al. 2021)")
    add("pgdrs", pgdrs, params=PGDRSParams, norms=["linf"],
        test_params={"steps": 2, "noise_samples": 2},
        description="torchattacks.PGDRS: PGD on a noise-smoothed classifier (Salman et al. 2019)")
    add("pgdrsl2", pgdrs, params=PGDRSParams, norms=["l2"],
        test_params={"steps": 2, "noise_samples": 2},
        description="torchattacks.PGDRSL2: l2 PGD on a noise-smoothed classifier (Salman et al. 2019)")
    # --- AutoAttack components (Croce & Hein 2020) ---
    add("apgd", apgd, params=APGDParams, norms=["linf", "l2"], test_params={"steps": 3},
        description="torchattacks.APGD: auto-PGD, CE or DLR loss; returns x where it fails")
    add("apgdt", apgdt, params=APGDTParams, norms=["linf", "l2"], test_params={"steps": 3},
        description="torchattacks.APGDT: targeted auto-PGD on the DLR loss, top target classes")
    add("fab", fab, params=FABParams, norms=["linf", "l2"], test_params={"steps": 3},
        description="torchattacks.FAB: fast adaptive boundary, keeps only points within eps")
    add("square", square, params=SquareParams, norms=["linf", "l2"], black_box=True,
        test_params={"queries": 100},
        description="torchattacks.Square: score-based random-search square attack (Andriushchenko "
                    "et al. 2020)")
    add("autoattack-ta", autoattack, params=AutoAttackParams, norms=["linf", "l2"],
        test_params={"steps": 2, "queries": 10},
        description="torchattacks.AutoAttack (APGD-CE, APGD-T, FAB-T, Square) at AutoAttack's "
                    "100 iterations")
    add("spsa", spsa, params=SPSAParams, norms=["linf"], black_box=True,
        test_params={"steps": 2, "samples": 8, "max_batch_size": 8},
        description="torchattacks.SPSA: gradient-free finite-difference Adam (Uesato et al. 2018)")
    # --- minimum-norm: scored at the suite's budget in the norm they minimise ---
    add("cw", cw, params=CWParams, norms=["l2"], minimum_norm=True, test_params={"steps": 5},
        description="torchattacks.CW: Carlini-Wagner l2 (fixed c, margin bug fixed); minimum-norm")
    add("deepfool", deepfool, params=DeepFoolParams, norms=["l2"], minimum_norm=True,
        test_params={"steps": 3},
        description="torchattacks.DeepFool: l2 minimal perturbation (Moosavi-Dezfooli et al. 2016)")
    ead_test = {"binary_search_steps": 2, "max_iterations": 10}
    add("eadl1", eadl1, params=EADParams, norms=["l1"], minimum_norm=True, test_params=ead_test,
        description="torchattacks.EADL1: elastic-net attack, l1 decision rule (Chen et al. 2018)")
    add("eaden", eaden, params=EADParams, norms=["l1", "l2"], minimum_norm=True,
        test_params=ead_test,
        description="torchattacks.EADEN: elastic-net attack, elastic-net decision rule (Chen et al. "
                    "2018)")
    add("sparsefool", sparsefool, params=SparseFoolParams, norms=["l0"], minimum_norm=True,
        test_params={"steps": 2},
        description="torchattacks.SparseFool: sparse l0 attack via DeepFool (Modas et al. 2019)")
    add("jsma", jsma, params=JSMAParams, norms=["l0"], minimum_norm=True,
        test_params={"gamma": 0.05},
        description="torchattacks.JSMA: Jacobian saliency map, targeted l0 (Papernot et al. 2016)")
    add("onepixel", onepixel, params=OnePixelParams, norms=["l0"], minimum_norm=True,
        black_box=True, test_params={"steps": 2, "popsize": 2},
        description="torchattacks.OnePixel: differential evolution on a few pixels (Su et al. 2019)")
    add("pixle", pixle, params=PixleParams, norms=["l0"], minimum_norm=True, black_box=True,
        test_params={"restarts": 2, "max_iterations": 2},
        description="torchattacks.Pixle: pixel rearrangement random search (Pomponi et al. 2022)")
