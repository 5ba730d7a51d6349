"""Running an ART attack under the harness contract: torch in, float32 numpy through ART,
torch back; seeded global streams, targets as labels, and the range and budget repairs."""

from __future__ import annotations

import contextlib
import random
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from harness import ThreatModel, raise_flag
from harness.toolkits import REL_TOL, finite_in_range, perturbation_norms, select_targets

from .view import art_classifier, on_device


@contextlib.contextmanager
def global_rngs(seed: int | None) -> Iterator[None]:
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


#: The largest relative excess over eps put down to float32 rounding: anything larger is a real
#: violation, left for the engine's budget check to report.
ROUNDING_SLACK = 1e-4


def onto_ball(x: torch.Tensor, x_adv: torch.Tensor, threat: ThreatModel) -> torch.Tensor:
    """Undo float32 rounding past eps. ART projects l1/l2 balls in float32 by rescaling, and in
    3072 dimensions the float64 norm lands up to a few 1e-6 above eps (seen: 40.0001 for eps 40),
    past the engine's tolerance.

    Only examples over eps by more than the engine's relative tolerance (``REL_TOL``; its
    absolute slack is not counted, so no repaired example relies on it) and by at most
    ``ROUNDING_SLACK`` are touched: rescaled towards x in float64 (linf: clipped), which keeps
    them in [0,1] (a convex combination of x and x_adv) and changes nothing else.
    """
    norms = perturbation_norms(x, x_adv, threat.norm)
    eps = threat.eps
    fix = (norms > eps * (1 + REL_TOL)) & (norms <= eps * (1 + ROUNDING_SLACK))
    if not bool(fix.any()):
        return x_adv
    x64, delta = x[fix].double(), x_adv[fix].double() - x[fix].double()
    for shrink in (1.0, 1 - 1e-6, 1 - 1e-5):  # float rounding of x + delta can add a hair
        if threat.norm == "linf":
            fixed = (x64 + delta.clamp(-eps * shrink, eps * shrink)).to(x.dtype)
        else:
            scale = (eps * shrink / norms[fix]).clamp(max=1.0).view(-1, *[1] * (x.dim() - 1))
            fixed = (x64 + delta * scale).to(x.dtype)
        if bool((perturbation_norms(x[fix], fixed, threat.norm) <= eps).all()):
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
            with on_device(classifier.device):
                cached = (classifier, self.build(classifier))
            self._built[model] = cached
        return cached[1]

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.bounded and self.threat.eps == 0:  # ART rejects eps = 0; the answer is x
            return x.detach().clone()
        attack = self.art_attack(model, x)
        labels = y
        if self.targeted != "none":
            labels = select_targets(model, x, y, self.targeted, attack.estimator.nb_classes)
        # ART is float32 numpy throughout (float64 crashes ProjectedGradientDescentPyTorch)
        inputs = x.detach().to("cpu", torch.float32).numpy().copy()
        with global_rngs(self.seed):
            one_hot = np.eye(attack.estimator.nb_classes, dtype=np.float32)[labels.detach().cpu().numpy()]
            adv = self.generate(attack, inputs, one_hot)
        x_adv = torch.from_numpy(np.asarray(adv, dtype=np.float32)).to(device=x.device, dtype=x.dtype)
        x_adv = finite_in_range(x, x_adv, self.name)
        # l0 has no rounding issue (and no bounded attack here)
        return onto_ball(x, x_adv, self.threat) if self.bounded else x_adv

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


class SquareArtAttack(ArtAttack):
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

