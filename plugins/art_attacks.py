"""Attacks from the Adversarial Robustness Toolbox (ART 1.20, import ``art``), suffixed ``-art``.

Each registration declares the threat model the attack really respects: bounded attacks keep
every output inside the eps ball of the norms they are registered for; minimum-norm attacks
(CW, EAD, DeepFool, NewtonFool, JSMA, HopSkipJump, Boundary, SimBA) may go further and are
scored by the engine at the suite's budget in the norm they minimise. The engine handles eval
mode, parameter gradients and the budget check; this module turns torch batches into ART's
numpy calls and back.

The model is wrapped in a ``PyTorchClassifier`` once per model (cached by model, without keeping
the model alive) with ``clip_values=(0, 1)`` and ``preprocessing=(0, 1)``: inputs are [0,1]
images and normalization happens inside the model. The class count comes from the model's output
width (one forward), the input shape from the batch, the device from the model. The ART attack
object is likewise built once per model and reused for every batch, as ART intends.

Toolkit quirks handled here (each also commented where it is handled):

- ART computes in numpy float32 and ``ProjectedGradientDescentPyTorch`` crashes on float64
  input: batches go in as float32 numpy and come back as a tensor of the input's dtype/device;
- ART calls ``model.train(False)`` before every prediction and gradient and never restores the
  mode, and runs the children of an ``nn.Sequential`` one by one instead of calling ``forward``
  (bypassing a subclass's forward and the container's hooks): ART wraps a small module that
  calls the model (so ``forward`` and hooks run) and ignores ``train()``, leaving the modes to
  the engine (eval for evaluation; a training recipe may deliberately craft in train mode);
- ``PyTorchClassifier`` moves the model to ``cuda:<current device>``: it is built with the
  model's own CUDA device current; ART has no MPS support, so other devices are refused;
- progress bars (``verbose=True`` by default, e.g. PGD's tqdm bar) are off;
- ``batch_size`` defaults to 128 everywhere (ART's own defaults are 32, or 1 for CW, DeepFool,
  EAD, JSMA, NewtonFool, which makes them loop example by example);
- PGD's default is no random start (``num_random_init=0``); here ``random_start`` defaults to
  True as in Madry et al. (and the torchattacks plugin), and ``random_start = false`` gives ART's
  behaviour;
- ART draws its randomness (random starts, Square, HopSkipJump, Boundary, SimBA, random targets)
  from the *global* NumPy and ``random`` streams: the harness seeds them before every attack
  run, and an explicit ``seed`` reseeds them for each call and restores them afterwards;
- HopSkipJump and BoundaryAttack draw their starting points from a fresh, OS-seeded
  ``np.random.RandomState()`` (two runs differ whatever the seed): the same search runs here on
  the seeded global stream and is passed to ART as ``x_adv_init``;
- ``BoundaryAttack`` is targeted by default: it is run untargeted;
- ART projects onto l1/l2 balls in float32 by rescaling; in 3072 dimensions the norm lands up
  to a few 1e-6 above eps (seen: 40.0001 at eps 40), past the engine's 1e-6 tolerance: such
  float-rounding excesses (at most 1e-4 relative) are projected away in float64;
- ``SquareAttack`` accepts ``norm=1`` but has no l1 branch (it returns x unchanged): l1 is not
  registered; its l2 and linf branches are. Its l2 initialisation is empty (NaN, skipped) on
  inputs under 10 pixels high: flagged;
- ``CarliniLInfMethod`` restarts every (tau, c) round from x with ``steps`` Adam steps of ``lr``
  in tanh space, so it cannot move a pixel by more than about ``steps * lr / 2`` (0.05 at ART's
  defaults), and loops example by example: it is registered with ART's defaults but is slow and
  weak (on digits, 4% broken at linf 0.1 where PGD breaks 46%);
- SimBA and NewtonFool are defined on class probabilities (SimBA refuses logits): they see the
  softmax of the model's logits;
- APGD's DLR loss reads the third largest logit: it needs 3 classes;
- ``AutoConjugateGradient`` never applies the sign in its linf step (it computes
  ``np.sign(cgradk)`` into an unused variable): linf is not registered, l2 and l1 are;
- outputs pass a range/finiteness filter: non-finite examples are returned unperturbed with a
  flag, values are clamped to [0,1] (a range clamp never moves a point farther from x, so it
  cannot hide a budget violation).

Not registered, and why: ``SpatialTransformation`` (rotations and translations are not small in
any lp norm: a one-pixel shift is already an linf change of up to 1, so scored at any lp budget
the column would read "robust" everywhere; its threat model is a rotation/translation grid),
``Wasserstein`` (bounded in Wasserstein distance, and it grows its ball by ``eps_factor`` during
the run), ``CompositeAdversarialAttackPyTorch`` (semantic hue/saturation/rotation changes),
``AutoAttack`` (ART's needs the ``multiprocess`` package, not installed; the pyautoattack plugin
provides AutoAttack), ``BrendelBethgeAttack`` (needs ``numba``, not installed), Pixel/Threshold
attacks (per-image evolution strategies on a 0-255 threshold; CMA-ES needs ``cma``), and the
universal, patch, audio, video, tabular and detection attacks, which are not per-example image
classifier evasion attacks.
"""

from __future__ import annotations

import contextlib
import random
import weakref
from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from harness import StepSize, ThreatModel, hookimpl, raise_flag
from harness.toolkits import count_classes, finite_in_range, model_device, model_dtype

__version__ = "1.0"

Target = Literal["none", "random", "least-likely", "next"]
TARGET_HELP = ('"none": untargeted. "random": a random wrong class; "least-likely": the class the '
               'model ranks last on the clean input; "next": (y + 1) mod classes. Success is still '
               'scored untargeted (any wrong class).')
_ART_NORMS: dict[str, Any] = {"linf": np.inf, "l2": 2, "l1": 1}


# --- parameter models ---------------------------------------------------------------------------


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Batched(_Params):
    batch_size: int = Field(default=128, ge=1, description="Examples ART processes at once (ART's "
                            "own default is 32, or 1 for CW/DeepFool/EAD/JSMA/NewtonFool).")


class _Seeded(_Params):
    seed: int | None = Field(
        default=None, description="None: ART draws from the global NumPy/random streams, which the "
        "harness seeds before every attack run. An integer reseeds them for each call (restored after).")


class _Targeted(_Params):
    targeted: Target = Field(default="none", description=TARGET_HELP)


class _Iterative(_Params):
    steps: int = Field(default=10, ge=1, description="Iterations (ART max_iter).")
    step_size: StepSize | None = Field(
        default=None, description='Absolute ("2/255") or relative ("eps/8") step (ART eps_step); '
        "default 2.5*eps/steps.")

    def alpha(self, eps: float) -> float:
        return self.step_size.absolute(eps) if self.step_size else 2.5 * eps / self.steps


class FGSMParams(_Targeted, _Batched, _Seeded):
    random_start: bool = Field(default=False, description="Step from a uniform random point of the "
                               "ball instead of x (ART num_random_init=1).")


class PGDParams(_Iterative, _Targeted, _Batched, _Seeded):
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


class BIMParams(_Iterative, _Targeted, _Batched):
    pass


class MIMParams(_Iterative, _Targeted, _Batched):
    decay: float = Field(default=1.0, ge=0, description="Momentum decay factor mu (Dong et al. 2018).")


class APGDParams(_Targeted, _Batched, _Seeded):
    steps: int = Field(default=100, ge=1, description="Iterations per restart (AutoAttack: 100).")
    step_size: StepSize = Field(default=StepSize(value=2.0, relative=True),
                                description='Initial step (ART eps_step); default "2*eps" as in '
                                "Croce & Hein 2020 (ART's own default is an absolute 0.1).")
    restarts: int = Field(default=1, ge=1, description="Random starts (ART nb_random_init, default 5 "
                          "there); later ones attack only the examples still robust.")
    loss: Literal["ce", "dlr"] = Field(default="ce", description="Cross-entropy or difference of "
                                       "logits ratio (needs 3+ classes).")


class CWL2Params(_Targeted, _Batched):
    confidence: float = Field(default=0.0, ge=0, description="Margin kappa of the misclassification.")
    lr: float = Field(default=0.01, gt=0, description="Learning rate in tanh space.")
    binary_search_steps: int = Field(default=10, ge=1, description="Binary search steps over c.")
    steps: int = Field(default=10, ge=1, description="Iterations per search step (ART max_iter).")
    initial_const: float = Field(default=0.01, gt=0, description="Initial trade-off constant c.")
    max_halving: int = Field(default=5, ge=1, description="Line-search halvings of the step.")
    max_doubling: int = Field(default=5, ge=1, description="Line-search doublings of the step.")


class CWLinfParams(_Targeted, _Batched):
    confidence: float = Field(default=0.0, ge=0, description="Margin kappa of the misclassification.")
    lr: float = Field(default=0.01, gt=0, description="Adam learning rate in tanh space (each round "
                      "starts from x: a pixel moves at most about steps*lr/2).")
    steps: int = Field(default=10, ge=1, description="Adam iterations per (tau, c) round, each from x "
                       "(ART max_iter).")
    decrease_factor: float = Field(default=0.9, gt=0, lt=1, description="Shrink factor of tau.")
    initial_const: float = Field(default=1e-5, gt=0, description="Initial constant c.")
    largest_const: float = Field(default=20.0, gt=0, description="Largest constant c tried.")
    const_factor: float = Field(default=2.0, gt=1, description="Growth factor of c.")


class EADParams(_Targeted, _Batched):
    confidence: float = Field(default=0.0, ge=0, description="Margin kappa of the misclassification.")
    lr: float = Field(default=0.01, gt=0, description="ISTA learning rate.")
    binary_search_steps: int = Field(default=9, ge=1, description="Binary search steps over c.")
    steps: int = Field(default=100, ge=1, description="Iterations per search step (ART max_iter).")
    beta: float = Field(default=1e-3, gt=0, description="l1 weight of the elastic net.")
    initial_const: float = Field(default=1e-3, gt=0, description="Initial trade-off constant c.")
    decision_rule: Literal["EN", "L1", "L2"] = Field(
        default="EN", description="Distance that picks the best adversarial example.")


class DeepFoolParams(_Batched):
    steps: int = Field(default=100, ge=1, description="Linearisation steps (ART max_iter).")
    overshoot: float = Field(default=1e-6, ge=0, description="Overshoot past the boundary (ART epsilon).")
    nb_grads: int = Field(default=10, ge=1, description="Top classes whose gradients are used.")


class NewtonFoolParams(_Batched):
    steps: int = Field(default=100, ge=1, description="Newton steps (ART max_iter).")
    eta: float = Field(default=0.01, gt=0, description="Step bound relative to the input norm.")


class JSMAParams(_Batched):
    # JSMA is a targeted attack: the labels handed to ART are targets, chosen here.
    targeted: Literal["random", "least-likely", "next"] = Field(default="random",
                                                                description=TARGET_HELP)
    theta: float = Field(default=0.1, description="Change per selected feature (sign = direction).")
    gamma: float = Field(default=1.0, gt=0, le=1, description="Largest fraction of features changed.")


class SquareParams(_Batched, _Seeded):
    queries: int = Field(default=5000, ge=1, description="Queries per restart (ART max_iter; its "
                         "default is 100, AutoAttack uses 5000).")
    p_init: float = Field(default=0.8, gt=0, le=1, description="Initial fraction of pixels changed.")
    restarts: int = Field(default=1, ge=1, description="Restarts on the examples not yet fooled.")


class HopSkipJumpParams(_Batched, _Seeded):
    steps: int = Field(default=50, ge=1, description="Iterations (ART max_iter).")
    max_eval: int = Field(default=10000, ge=1, description="Most queries per gradient estimate.")
    init_eval: int = Field(default=100, ge=1, description="Queries of the first gradient estimate.")
    init_size: int = Field(default=100, ge=1, description="Random draws to find a starting point.")


class BoundaryParams(_Batched, _Seeded):
    steps: int = Field(default=5000, ge=1, description="Iterations (ART max_iter).")
    delta: float = Field(default=0.01, gt=0, description="Initial orthogonal step.")
    epsilon: float = Field(default=0.01, gt=0, description="Initial step towards the original.")
    step_adapt: float = Field(default=0.667, gt=0, lt=1, description="Step adaptation factor.")
    num_trial: int = Field(default=25, ge=1, description="Trials per iteration.")
    sample_size: int = Field(default=20, ge=1, description="Samples per trial.")
    init_size: int = Field(default=100, ge=1, description="Random draws to find a starting point.")


class SimBAParams(_Seeded):
    attack: Literal["dct", "px"] = Field(default="dct", description="Search basis: low-frequency DCT "
                                         "or pixels.")
    steps: int = Field(default=3000, ge=1, description="Directions tried, 2 queries each (ART max_iter).")
    step_size: float = Field(default=0.2, gt=0, description="Step along each direction (ART epsilon; "
                             "0.2 as in Guo et al. 2019).")
    order: Literal["random", "diag"] = Field(default="random", description="Pixel order (px only).")
    freq_dim: int = Field(default=4, ge=1, description="Initial DCT block size (dct only).")
    stride: int = Field(default=1, ge=1, description="DCT block growth (dct only).")
    targeted: Target = Field(default="none", description=TARGET_HELP)


# --- the model as ART sees it --------------------------------------------------------------------


class _ArtView(nn.Module):
    """What ART wraps instead of the model: calls it, and holds it only weakly.

    * ``forward`` calls the model, so a Sequential subclass's own forward and hooks registered on
      the model run (ART would run an ``nn.Sequential``'s children one by one);
    * ``train()`` does nothing: ART calls ``train(False)`` before every prediction and gradient
      and never restores the mode; the engine owns the modes;
    * the model is not a submodule and only weakly referenced, so ART cannot move it and the
      cached classifier does not keep a finished model alive;
    * inputs are cast to the model's dtype (ART is float32) and outputs back to float32.
    """

    def __init__(self, model: nn.Module, dtype: torch.dtype, probabilities: bool) -> None:
        super().__init__()
        self._model = weakref.ref(model)
        self._dtype, self._probabilities = dtype, probabilities

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        model = self._model()
        if model is None:  # pragma: no cover - the cache drops entries with their model
            raise RuntimeError("the model this ART classifier wraps no longer exists")
        logits = model(x.to(self._dtype)).float()
        return logits.softmax(dim=1) if self._probabilities else logits

    def train(self, mode: bool = True) -> _ArtView:
        return self


@contextlib.contextmanager
def _on_device(device: torch.device) -> Iterator[None]:
    # ART puts a PyTorchClassifier on cuda:<current device> (and moves the model there): make
    # the model's own device current while classifiers and attacks are built.
    with torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext():
        yield


#: model → {probabilities: (signature, classifier)}. Weak keys, and a classifier holds its model
#: only weakly (``_ArtView``), so the entries go away with the model.
_CLASSIFIERS: weakref.WeakKeyDictionary[nn.Module, dict[bool, tuple[tuple[Any, ...], Any]]] = (
    weakref.WeakKeyDictionary())


def art_classifier(model: nn.Module, x: torch.Tensor, *, probabilities: bool = False) -> Any:
    """The cached ``PyTorchClassifier`` of ``model`` for inputs shaped like ``x``.

    Built once per model (and output kind: logits, or softmax for the attacks that need
    probabilities); rebuilt only if the model moved to another device or dtype, or the input
    shape changed.
    """
    device = model_device(model, x.device)
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"ART 1.20 runs PyTorch models on cpu or cuda only; this model is on "
                         f"{device.type} (run with --device cpu)")
    dtype = model_dtype(model, torch.float32)
    signature = (tuple(x.shape[1:]), device, dtype)
    per_model = _CLASSIFIERS.setdefault(model, {})
    cached = per_model.get(probabilities)
    if cached is not None and cached[0] == signature:
        return cached[1]
    from art.estimators.classification import PyTorchClassifier

    with _on_device(device):
        classifier = PyTorchClassifier(
            model=_ArtView(model, dtype, probabilities), loss=nn.CrossEntropyLoss(),
            input_shape=tuple(x.shape[1:]), nb_classes=count_classes(model, x),
            clip_values=(0.0, 1.0), preprocessing=(0.0, 1.0), channels_first=True,
            device_type="gpu" if device.type == "cuda" else "cpu")
    per_model[probabilities] = (signature, classifier)
    return classifier


# --- running an ART attack under the harness contract ------------------------------------------


@contextlib.contextmanager
def _global_rngs(seed: int | None) -> Iterator[None]:
    """ART draws from the global NumPy and ``random`` streams: reseed both for a fixed seed."""
    if seed is None:
        yield
        return
    saved = np.random.get_state(), random.getstate()
    np.random.seed(seed % 2**32)
    random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(saved[0])
        random.setstate(saved[1])


def _targets(model: nn.Module, x: torch.Tensor, y: torch.Tensor, mode: str, num_classes: int
             ) -> torch.Tensor:
    if mode == "next":
        return (y + 1) % num_classes
    if mode == "random":  # uniform over the other classes, from the (seeded) torch stream
        shift = torch.randint(1, num_classes, y.shape, device="cpu").to(y.device)
        return (y + shift) % num_classes
    with torch.no_grad():  # least-likely on the clean input
        return model(x).argmin(dim=1)


#: The engine accepts norms up to eps * (1 + 1e-6) (its documented float tolerance); the largest
#: relative excess put down to float32 rounding here is ``ROUNDING_SLACK``: anything larger is a
#: real violation, left for the engine's budget check to report.
_ENGINE_REL_TOL = 1e-6
ROUNDING_SLACK = 1e-4
_ORDERS = {"linf": float("inf"), "l2": 2.0, "l1": 1.0}


def _norms64(x: torch.Tensor, x_adv: torch.Tensor, norm: str) -> torch.Tensor:
    delta = (x_adv.double() - x.double()).flatten(1)
    return torch.linalg.vector_norm(delta, ord=_ORDERS[norm], dim=1)


def _onto_ball(x: torch.Tensor, x_adv: torch.Tensor, threat: ThreatModel) -> torch.Tensor:
    """Undo float32 rounding past eps. ART projects l1/l2 balls in float32 by rescaling, and in
    3072 dimensions the float64 norm lands up to a few 1e-6 above eps (seen: 40.0001 for eps 40),
    past the engine's tolerance.

    Only examples the engine would reject and that are over eps by at most ``ROUNDING_SLACK``
    are touched: rescaled towards x in float64 (linf: clipped), which keeps them in [0,1] (a
    convex combination of x and x_adv) and changes nothing else.
    """
    norms = _norms64(x, x_adv, threat.norm)
    eps = threat.eps
    fix = (norms > eps * (1 + _ENGINE_REL_TOL)) & (norms <= eps * (1 + ROUNDING_SLACK))
    if not bool(fix.any()):
        return x_adv
    x64, delta = x[fix].double(), x_adv[fix].double() - x[fix].double()
    for shrink in (1.0, 1 - 1e-6, 1 - 1e-5):  # float rounding of x + delta can add a hair
        if threat.norm == "linf":
            fixed = (x64 + delta.clamp(-eps * shrink, eps * shrink)).to(x.dtype)
        else:
            scale = (eps * shrink / norms[fix]).clamp(max=1.0).view(-1, *[1] * (x.dim() - 1))
            fixed = (x64 + delta * scale).to(x.dtype)
        if bool((_norms64(x[fix], fixed, threat.norm) <= eps).all()):
            break
    x_adv = x_adv.clone()
    x_adv[fix] = fixed.clamp(0.0, 1.0)
    return x_adv


Builder = Callable[[Any], Any]


class ArtAttack:
    """``attack(model, x, y)`` around one ART evasion attack, built once per model by ``build``.

    ``build(classifier)`` returns the configured ART attack object.
    """

    def __init__(self, name: str, build: Builder, threat: ThreatModel, *, bounded: bool,
                 targeted: str = "none", seed: int | None = None, min_classes: int = 2,
                 probabilities: bool = False) -> None:
        self.name, self.build, self.threat, self.bounded = name, build, threat, bounded
        self.targeted, self.seed, self.min_classes = targeted, seed, min_classes
        self.probabilities = probabilities
        #: model → (classifier, ART attack); neither holds the model strongly
        self._built: weakref.WeakKeyDictionary[nn.Module, tuple[Any, Any]] = (
            weakref.WeakKeyDictionary())

    def input_problem(self, input_shape: tuple[int, ...], num_classes: int) -> str | None:
        """Why this attack cannot run on such inputs (asked by ``harness validate`` too)."""
        if num_classes < self.min_classes:
            return (f"{self.name} needs a model with at least {self.min_classes} classes, "
                    f"not {num_classes}")
        return None

    def art_attack(self, model: nn.Module, x: torch.Tensor) -> Any:
        """The ART attack object for this model (built on first use, then reused)."""
        classifier = art_classifier(model, x, probabilities=self.probabilities)
        cached = self._built.get(model)
        if cached is None or cached[0] is not classifier:  # new model, or classifier rebuilt
            problem = self.input_problem(tuple(x.shape[1:]), classifier.nb_classes)
            if problem:
                raise ValueError(problem)
            with _on_device(classifier.device):
                cached = (classifier, self.build(classifier))
            self._built[model] = cached
        return cached[1]

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.bounded and self.threat.eps == 0:  # ART rejects eps = 0; the answer is x
            return x.detach().clone()
        attack = self.art_attack(model, x)
        labels = y
        if self.targeted != "none":
            labels = _targets(model, x, y, self.targeted, attack.estimator.nb_classes)
        # ART is float32 numpy throughout (float64 crashes ProjectedGradientDescentPyTorch)
        inputs = x.detach().to("cpu", torch.float32).numpy().copy()
        with _global_rngs(self.seed):
            one_hot = np.eye(attack.estimator.nb_classes, dtype=np.float32)[labels.detach().cpu().numpy()]
            adv = self.generate(attack, inputs, one_hot)
        x_adv = torch.from_numpy(np.asarray(adv, dtype=np.float32)).to(device=x.device, dtype=x.dtype)
        x_adv = finite_in_range(x, x_adv, self.name)
        # l0 has no rounding issue (and no bounded attack here)
        return _onto_ball(x, x_adv, self.threat) if self.bounded else x_adv

    def generate(self, attack: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return attack.generate(x, y=y)


class DecisionBasedAttack(ArtAttack):
    """HopSkipJump / Boundary with starting points drawn from the seeded global NumPy stream.

    ART draws their starting points (uniform images the model already misclassifies) from a
    fresh ``np.random.RandomState()``, seeded by the OS: unseedable, so two runs differ. The same
    search is done here with the global stream and handed to ART as ``x_adv_init``; HopSkipJump
    then gets ART's own binary search towards x (which ART skips for a given start). Examples
    without a start after ``init_size`` draws are returned unperturbed, as ART returns them.
    """

    def __init__(self, *args: Any, init_size: int, binary_search: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.init_size, self.binary_search = init_size, binary_search

    def generate(self, attack: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        classifier = attack.estimator
        preds = classifier.predict(x, batch_size=attack.batch_size).argmax(axis=1)
        starts, found = np.empty_like(x), np.zeros(len(x), dtype=bool)
        for i in range(len(x)):
            draws = np.random.uniform(0.0, 1.0, size=(self.init_size, *x.shape[1:]))
            draws = draws.astype(np.float32)
            hits = np.flatnonzero(
                classifier.predict(draws, batch_size=attack.batch_size).argmax(axis=1) != preds[i])
            if hits.size:
                found[i], starts[i] = True, draws[hits[0]]
                if self.binary_search:  # what ART's own HopSkipJump start does (threshold 0.001)
                    starts[i] = attack._binary_search(
                        current_sample=starts[i], original_sample=x[i], target=preds[i], norm=2,
                        clip_min=0.0, clip_max=1.0, threshold=0.001)
        if not found.all():
            raise_flag("art-no-adversarial-start", f"{self.name}: {int((~found).sum())} example(s) "
                       f"with no misclassified image among {self.init_size} uniform draws were not "
                       "attacked (counted as not broken); raise init_size")
        adv = x.copy()
        if found.any():
            adv[found] = attack.generate(x[found], y=y[found], x_adv_init=starts[found])
        return adv


# --- factories ----------------------------------------------------------------------------------


def fgsm(params: FGSMParams, threat: ThreatModel) -> ArtAttack:
    def build(classifier: Any) -> Any:
        from art.attacks.evasion import FastGradientMethod

        return FastGradientMethod(classifier, norm=_ART_NORMS[threat.norm], eps=threat.eps,
                                  eps_step=threat.eps, targeted=params.targeted != "none",
                                  num_random_init=int(params.random_start),
                                  batch_size=params.batch_size)

    return ArtAttack("fgsm-art", build, threat, bounded=True, targeted=params.targeted,
                     seed=params.seed)


def pgd(params: PGDParams, threat: ThreatModel) -> ArtAttack:
    def build(classifier: Any) -> Any:
        from art.attacks.evasion import ProjectedGradientDescentPyTorch

        return ProjectedGradientDescentPyTorch(
            classifier, norm=_ART_NORMS[threat.norm], eps=threat.eps,
            eps_step=params.alpha(threat.eps), max_iter=params.steps,
            targeted=params.targeted != "none", num_random_init=params.random_inits(),
            batch_size=params.batch_size, verbose=False)

    return ArtAttack("pgd-art", build, threat, bounded=True, targeted=params.targeted,
                     seed=params.seed)


def bim(params: BIMParams, threat: ThreatModel) -> ArtAttack:
    def build(classifier: Any) -> Any:
        from art.attacks.evasion import BasicIterativeMethod

        # BIM dispatches to ProjectedGradientDescentPyTorch (linf, no random start)
        return BasicIterativeMethod(classifier, eps=threat.eps, eps_step=params.alpha(threat.eps),
                                    max_iter=params.steps, targeted=params.targeted != "none",
                                    batch_size=params.batch_size, verbose=False)

    return ArtAttack("bim-art", build, threat, bounded=True, targeted=params.targeted)


def mim(params: MIMParams, threat: ThreatModel) -> ArtAttack:
    def build(classifier: Any) -> Any:
        from art.attacks.evasion import MomentumIterativeMethod

        # MIM dispatches to ProjectedGradientDescentPyTorch with momentum (no random start)
        return MomentumIterativeMethod(
            classifier, norm=_ART_NORMS[threat.norm], eps=threat.eps,
            eps_step=params.alpha(threat.eps), decay=params.decay, max_iter=params.steps,
            targeted=params.targeted != "none", batch_size=params.batch_size, verbose=False)

    return ArtAttack("mim-art", build, threat, bounded=True, targeted=params.targeted)


def _auto_pgd(cls_name: str, name: str) -> Callable[[APGDParams, ThreatModel], ArtAttack]:
    def factory(params: APGDParams, threat: ThreatModel) -> ArtAttack:
        def build(classifier: Any) -> Any:
            import art.attacks.evasion

            cls = getattr(art.attacks.evasion, cls_name)
            loss = "cross_entropy" if params.loss == "ce" else "difference_logits_ratio"
            return cls(classifier, norm=_ART_NORMS[threat.norm], eps=threat.eps,
                       eps_step=params.step_size.absolute(threat.eps), max_iter=params.steps,
                       targeted=params.targeted != "none", nb_random_init=params.restarts,
                       batch_size=params.batch_size, loss_type=loss, verbose=False)

        # DLR divides by z_(1) - z_(3)
        return ArtAttack(name, build, threat, bounded=True, targeted=params.targeted,
                         seed=params.seed, min_classes=3 if params.loss == "dlr" else 2)

    factory.__name__ = factory.__qualname__ = name.replace("-", "_")
    return factory


apgd = _auto_pgd("AutoProjectedGradientDescent", "apgd-art")
acg = _auto_pgd("AutoConjugateGradient", "acg-art")


def cw_l2(params: CWL2Params, threat: ThreatModel) -> ArtAttack:
    def build(classifier: Any) -> Any:
        from art.attacks.evasion import CarliniL2Method

        return CarliniL2Method(
            classifier, confidence=params.confidence, targeted=params.targeted != "none",
            learning_rate=params.lr, binary_search_steps=params.binary_search_steps,
            max_iter=params.steps, initial_const=params.initial_const,
            max_halving=params.max_halving, max_doubling=params.max_doubling,
            batch_size=params.batch_size, verbose=False)

    return ArtAttack("cw-l2-art", build, threat, bounded=False, targeted=params.targeted)


def cw_linf(params: CWLinfParams, threat: ThreatModel) -> ArtAttack:
    def build(classifier: Any) -> Any:
        from art.attacks.evasion import CarliniLInfMethod

        return CarliniLInfMethod(
            classifier, confidence=params.confidence, targeted=params.targeted != "none",
            learning_rate=params.lr, max_iter=params.steps,
            decrease_factor=params.decrease_factor, initial_const=params.initial_const,
            largest_const=params.largest_const, const_factor=params.const_factor,
            batch_size=params.batch_size, verbose=False)

    return ArtAttack("cw-linf-art", build, threat, bounded=False, targeted=params.targeted)


def ead(params: EADParams, threat: ThreatModel) -> ArtAttack:
    def build(classifier: Any) -> Any:
        from art.attacks.evasion import ElasticNet

        return ElasticNet(
            classifier, confidence=params.confidence, targeted=params.targeted != "none",
            learning_rate=params.lr, binary_search_steps=params.binary_search_steps,
            max_iter=params.steps, beta=params.beta, initial_const=params.initial_const,
            batch_size=params.batch_size, decision_rule=params.decision_rule, verbose=False)

    return ArtAttack("ead-art", build, threat, bounded=False, targeted=params.targeted)


def deepfool(params: DeepFoolParams, threat: ThreatModel) -> ArtAttack:
    def build(classifier: Any) -> Any:
        from art.attacks.evasion import DeepFool

        return DeepFool(classifier, max_iter=params.steps, epsilon=params.overshoot,
                        nb_grads=params.nb_grads, batch_size=params.batch_size, verbose=False)

    return ArtAttack("deepfool-art", build, threat, bounded=False)


def newtonfool(params: NewtonFoolParams, threat: ThreatModel) -> ArtAttack:
    def build(classifier: Any) -> Any:
        from art.attacks.evasion import NewtonFool

        return NewtonFool(classifier, max_iter=params.steps, eta=params.eta,
                          batch_size=params.batch_size, verbose=False)

    # NewtonFool's step uses the class probability (its theta is min(eta*|x|, F_y - 1/K))
    return ArtAttack("newtonfool-art", build, threat, bounded=False, probabilities=True)


def jsma(params: JSMAParams, threat: ThreatModel) -> ArtAttack:
    def build(classifier: Any) -> Any:
        from art.attacks.evasion import SaliencyMapMethod

        return SaliencyMapMethod(classifier, theta=params.theta, gamma=params.gamma,
                                 batch_size=params.batch_size, verbose=False)

    # the labels passed to ART are the targets (JSMA is targeted)
    return ArtAttack("jsma-art", build, threat, bounded=False, targeted=params.targeted)


class _SquareAttack(ArtAttack):
    """ART's l2 Square tiles the image into 5×5 squares of ``height // 5`` pixels: under 10 pixels
    they are empty, the initial perturbation is 0/0 = NaN and rejected (NaN never improves the
    loss), so the search starts from x. numpy's divide warnings for it are silenced, and a flag
    says the l2 initialisation was skipped."""

    def generate(self, attack: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if self.threat.norm == "l2" and min(x.shape[2:]) < 10:
            raise_flag("art-square-l2-no-init", f"inputs of {x.shape[2]}x{x.shape[3]} pixels: ART's "
                       "l2 Square initialisation (5x5 tiles) is empty and skipped")
        with np.errstate(divide="ignore", invalid="ignore"):
            return attack.generate(x, y=y)


def square(params: SquareParams, threat: ThreatModel) -> ArtAttack:
    def build(classifier: Any) -> Any:
        from art.attacks.evasion import SquareAttack

        return SquareAttack(classifier, norm=_ART_NORMS[threat.norm], max_iter=params.queries,
                            eps=threat.eps, p_init=params.p_init, nb_restarts=params.restarts,
                            batch_size=params.batch_size, verbose=False)

    return _SquareAttack("square-art", build, threat, bounded=True, seed=params.seed)


def hopskipjump(params: HopSkipJumpParams, threat: ThreatModel) -> ArtAttack:
    def build(classifier: Any) -> Any:
        from art.attacks.evasion import HopSkipJump

        return HopSkipJump(classifier, batch_size=params.batch_size, targeted=False,
                           norm=_ART_NORMS[threat.norm], max_iter=params.steps,
                           max_eval=params.max_eval, init_eval=params.init_eval,
                           init_size=params.init_size, verbose=False)

    return DecisionBasedAttack("hopskipjump-art", build, threat, bounded=False, seed=params.seed,
                               init_size=params.init_size, binary_search=True)


def boundary(params: BoundaryParams, threat: ThreatModel) -> ArtAttack:
    def build(classifier: Any) -> Any:
        from art.attacks.evasion import BoundaryAttack

        # ART's BoundaryAttack defaults to targeted=True
        return BoundaryAttack(classifier, batch_size=params.batch_size, targeted=False,
                              delta=params.delta, epsilon=params.epsilon,
                              step_adapt=params.step_adapt, max_iter=params.steps,
                              num_trial=params.num_trial, sample_size=params.sample_size,
                              init_size=params.init_size, verbose=False)

    return DecisionBasedAttack("boundary-art", build, threat, bounded=False, seed=params.seed,
                               init_size=params.init_size, binary_search=False)


def simba(params: SimBAParams, threat: ThreatModel) -> ArtAttack:
    def build(classifier: Any) -> Any:
        from art.attacks.evasion import SimBA

        # ART's SimBA handles one example at a time (batch_size must be 1)
        return SimBA(classifier, attack=params.attack, max_iter=params.steps, order=params.order,
                     epsilon=params.step_size, freq_dim=params.freq_dim, stride=params.stride,
                     targeted=params.targeted != "none", batch_size=1, verbose=False)

    # SimBA refuses logits: it climbs down the probability of the true class
    return ArtAttack("simba-art", build, threat, bounded=False, targeted=params.targeted,
                     seed=params.seed, probabilities=True)


@hookimpl
def harness_register_attacks(registry):
    add = registry.add
    # --- bounded, gradient-based ---
    add("fgsm-art", fgsm, params=FGSMParams, norms=["linf", "l2", "l1"],
        description="ART FastGradientMethod: one gradient step of size eps (l1: the single "
                    "largest-gradient coordinate)")
    add("pgd-art", pgd, params=PGDParams, norms=["linf", "l2", "l1"], test_params={"steps": 2},
        description="ART ProjectedGradientDescentPyTorch; l1 steps one coordinate at a time "
                    "(Liu et al. 2023 use it for PGD-L1)")
    add("bim-art", bim, params=BIMParams, norms=["linf"], test_params={"steps": 2},
        description="ART BasicIterativeMethod: iterative FGSM, no random start (Kurakin et al. 2017)")
    add("mim-art", mim, params=MIMParams, norms=["linf", "l2"], test_params={"steps": 2},
        description="ART MomentumIterativeMethod: MI-FGSM (Dong et al. 2018)")
    add("apgd-art", apgd, params=APGDParams, norms=["linf", "l2", "l1"],
        test_params={"steps": 3},
        description="ART AutoProjectedGradientDescent (Croce & Hein 2020), CE or DLR loss; returns x "
                    "where it fails")
    # not linf: ART 1.20 computes sign(direction) for linf but then steps along the raw direction
    # (``grad = np.sign(cgradk)`` is never used), so linf ACG barely moves (3% fooled on digits
    # where APGD fools 48%); its l2 and l1 branches normalise correctly
    add("acg-art", acg, params=APGDParams, norms=["l2", "l1"], test_params={"steps": 3},
        description="ART AutoConjugateGradient: APGD with conjugate directions (Yamamura et al. "
                    "2022); l2, l1")
    # --- bounded, score-based black box ---
    add("square-art", square, params=SquareParams, norms=["linf", "l2"], black_box=True,
        test_params={"queries": 20},
        description="ART SquareAttack: score-based random search (Andriushchenko et al. 2020)")
    # --- minimum-norm: scored at the suite's budget in the norm they minimise ---
    add("cw-l2-art", cw_l2, params=CWL2Params, norms=["l2"], minimum_norm=True,
        test_params={"binary_search_steps": 2, "steps": 3},
        description="ART CarliniL2Method: Carlini-Wagner l2 with binary search over c; minimum-norm")
    add("cw-linf-art", cw_linf, params=CWLinfParams, norms=["linf"], minimum_norm=True,
        test_params={"steps": 2, "decrease_factor": 0.5, "initial_const": 0.1,
                     "largest_const": 1.0, "const_factor": 4.0},
        description="ART CarliniLInfMethod: Carlini-Wagner linf (shrinking tau); minimum-norm; per "
                    "example, slow, and weak at ART's defaults (see the plugin notes)")
    add("ead-art", ead, params=EADParams, norms=["l1", "l2"], minimum_norm=True,
        test_params={"binary_search_steps": 2, "steps": 5},
        description="ART ElasticNet: EAD elastic-net attack (Chen et al. 2018); minimum-norm")
    add("deepfool-art", deepfool, params=DeepFoolParams, norms=["l2"], minimum_norm=True,
        test_params={"steps": 3},
        description="ART DeepFool: l2 minimal perturbation (Moosavi-Dezfooli et al. 2016)")
    add("newtonfool-art", newtonfool, params=NewtonFoolParams, norms=["l2"], minimum_norm=True,
        test_params={"steps": 3},
        description="ART NewtonFool: Newton steps on the class probability (Jang et al. 2017)")
    add("jsma-art", jsma, params=JSMAParams, norms=["l0"], minimum_norm=True,
        test_params={"gamma": 0.1},
        description="ART SaliencyMapMethod: targeted JSMA, few features changed (Papernot et al. 2016)")
    # --- minimum-norm, black box (decision- or score-based) ---
    add("hopskipjump-art", hopskipjump, params=HopSkipJumpParams, norms=["l2", "linf"],
        minimum_norm=True, black_box=True,
        test_params={"steps": 2, "max_eval": 20, "init_eval": 5, "init_size": 10},
        description="ART HopSkipJump: decision-based, labels only (Chen et al. 2020); minimum-norm")
    add("boundary-art", boundary, params=BoundaryParams, norms=["l2"], minimum_norm=True,
        black_box=True, test_params={"steps": 3, "num_trial": 3, "sample_size": 3, "init_size": 10},
        description="ART BoundaryAttack: decision-based random walk (Brendel et al. 2018); "
                    "minimum-norm")
    add("simba-art", simba, params=SimBAParams, norms=["l2"], minimum_norm=True, black_box=True,
        test_params={"steps": 20},
        description="ART SimBA: score-based ±step along DCT/pixel directions until fooled (Guo et al. "
                    "2019); l2 grows with the steps taken")
