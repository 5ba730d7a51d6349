"""AutoAttack (Croce & Hein 2020) through the PyPI package ``pyautoattack`` 0.2.

One factory, ``autoattack``, runs ``pyautoattack.AutoAttack.run_standard_evaluation`` on each
batch the engine hands it: version ``standard`` (RobustBench's APGD-CE, APGD-T, FAB-T, Square),
``plus``, ``rand`` or ``custom`` with a component list. ``square-aa`` is the same driver running
Square alone, registered separately because ``black_box`` is entry metadata: as its own column
it lets the report compare a score-based attack against the white-box ones (gradient masking).
The white-box components need no entry of their own: ``version = "custom"`` with
``attacks = ["apgd-ce"]`` is exactly that component under AutoAttack's driver, seeds and checks.

AutoAttack's diagnostic checks (randomness, softmax outputs, dynamic inference, few classes,
zero DLR gradients, Square beating the white-box attacks) are logged as warnings on the
``auto-attack`` logger; for the duration of each call a handler turns each one into a harness
flag (``aa-randomized``, ``aa-softmax-output``, ...) instead of losing it in a log.

Toolkit quirks handled here (each also commented where it is handled):

- the keyword-only constructor defaults to ``device='cpu'`` and ``eps=0.3``: both are always
  passed (the device is the model's);
- ``run_standard_evaluation`` returns ``(x_adv, y_adv)``; only x_adv is returned;
- iterations are fixed when the sub-attacks are built (APGD derives its step-size schedule in
  ``__init__``): ``n_iter`` rebuilds the APGD objects after construction;
- version ``custom`` keeps the constructor's restarts (APGD and FAB: 5), not standard's 1: the
  presets meant as "standard's first stage" set ``n_restarts = 1``;
- ``n_target_classes`` is fixed at 9 (5 for APGD-T at l1): capped at C-1 for a model with C
  classes, read from its output width at call time, else the targeted attacks index past the
  logits;
- the checks only look at the first ``batch_size`` examples: the whole batch is passed as one
  chunk, so every example is checked and attacked;
- the sub-attacks reseed the *global* torch RNG: they run inside ``torch.random.fork_rng``;
- FAB calls ``.backward()``, writing parameter gradients: parameters are frozen during the call;
- ``checks.check_dynamic`` counts calls in a module-level dict it never resets, so one dynamic
  model would flag every later model in the process: the counters are reset before each call;
  it also ends with ``sys.settrace(None)``, killing any active tracer (coverage, debugger): the
  previous trace function is restored after the call;
- it never calls ``model.eval()``: the engine's guard sets the mode (and a training recipe may
  deliberately craft in train mode), so the wrapper leaves it alone.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from harness import Params, ThreatModel, hookimpl, raise_flag
from harness.toolkits import (
    NORM_NAMES,
    count_classes,
    frozen_parameters,
    model_device,
    preserved_rng,
)

__version__ = "1.1"  # 1.1: class counting forward in eval mode (BN statistics untouched)

Component = Literal["apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"]
Version = Literal["standard", "plus", "rand", "custom"]

#: The attack list pyautoattack's ``_set_version`` installs for each fixed version.
VERSION_ATTACKS: dict[str, tuple[str, ...]] = {
    "standard": ("apgd-ce", "apgd-t", "fab-t", "square"),
    "plus": ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"),
    "rand": ("apgd-ce", "apgd-dlr"),
}
#: Fewest classes each component can run with: DLR reads the 3rd largest logit, targeted DLR the
#: 4th, and a targeted attack needs one class besides the true one.
MIN_CLASSES: dict[str, int] = {"apgd-ce": 2, "apgd-dlr": 3, "fab": 2, "square": 2, "apgd-t": 4,
                               "fab-t": 2}
#: Logger name used by pyautoattack (``logging.getLogger('auto-attack')`` in autoattack.py).
LOGGER_NAME = "auto-attack"
#: A substring of each check's warning (pyautoattack/checks.py) → the flag it raises.
CHECK_FLAGS: tuple[tuple[str, str], ...] = (
    ("randomized defense", "aa-randomized"),
    ("output is a probability distribution", "aa-softmax-output"),
    ("zero gradient", "aa-zero-gradients"),
    ("Square Attack has decreased the robust accuracy", "aa-square-beats-whitebox"),
    ("dynamic defense", "aa-dynamic"),
    ("classes it is not possible", "aa-few-classes"),  # check_n_classes: DLR with <= 3 classes
    ("more target classes", "aa-few-classes"),  # check_n_classes: more targets than classes - 1
)


class AutoAttackParams(Params):
    version: Version = Field(
        default="standard", description="standard: APGD-CE, APGD-T, FAB-T, Square (RobustBench); "
        "plus: adds APGD-DLR and FAB with 5 restarts; rand: APGD-CE and APGD-DLR with EOT 20 for "
        "randomized models; custom: the components listed in attacks.")
    attacks: list[Component] | None = Field(
        default=None, description="Components run in order, for version = \"custom\" only: "
        "apgd-ce, apgd-dlr, fab, square, apgd-t, fab-t.")
    n_iter: int | None = Field(
        default=None, ge=1, description="Iterations of APGD, APGD-T and FAB (default: "
        "AutoAttack's 100); fewer makes a cheap, weaker run.")
    n_restarts: int | None = Field(
        default=None, ge=1, description="Restarts of the untargeted APGD, FAB and Square (default: "
        "the version's own: standard 1 (APGD at l1: 5), plus 5, rand 1, custom 5 for APGD and FAB "
        "as pyautoattack builds them); the targeted attacks keep 1 per target class.")
    n_queries: int | None = Field(
        default=None, ge=1, description="Square's query budget (default: AutoAttack's 5000).")
    seed: int = Field(default=0, description="Seed of every sub-attack (reseeded per call).")

    @model_validator(mode="after")
    def _attacks_match_version(self) -> AutoAttackParams:
        if self.version == "custom":
            if not self.attacks:
                raise ValueError('version = "custom" needs a component list, e.g. '
                                 'attacks = ["apgd-ce", "apgd-t"]')
            if len(set(self.attacks)) != len(self.attacks):
                raise ValueError(f"attacks lists a component twice: {self.attacks}")
        elif self.attacks is not None:
            raise ValueError(
                f'attacks applies to version = "custom" only; version "{self.version}" runs its '
                f"own fixed list ({', '.join(VERSION_ATTACKS[self.version])}). Set "
                'version = "custom" to choose the components')
        if self.n_queries is not None and "square" not in self.components:
            raise ValueError(f"n_queries sets Square's budget, but Square is not run by "
                             f"{', '.join(self.components)}")
        return self

    @property
    def components(self) -> tuple[str, ...]:
        return tuple(self.attacks) if self.version == "custom" else VERSION_ATTACKS[self.version]


class SquareAAParams(Params):
    n_queries: int = Field(default=5000, ge=1, description="Query budget (AutoAttack: 5000).")
    n_restarts: int = Field(default=1, ge=1, description="Restarts on the examples not yet fooled.")
    seed: int = Field(default=0, description="Seed (reseeded per call).")


# --- capturing AutoAttack's checks ------------------------------------------------------------


class _ChecksToFlags(logging.Handler):
    """Turns each warning pyautoattack logs into a harness flag with a stable short name."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        name = next((flag for text, flag in CHECK_FLAGS if text in message), "aa-warning")
        detail = message.split(" See flags_doc.md", 1)[0]
        raise_flag(name, f"AutoAttack check: {detail}")


@contextlib.contextmanager
def _captured_checks(checks: ModuleType) -> Iterator[None]:
    """The checks' warnings become flags for the duration of one call, then everything is put back.

    The handler sits on the toolkit's own logger, so its warnings reach flags even when logging
    is unconfigured (and then do not fall through to stderr); a user's own handlers still see
    them. Also works around two check_dynamic bugs (see the module docstring).
    """
    logger = logging.getLogger(LOGGER_NAME)
    handler = _ChecksToFlags()
    level, propagate = logger.level, logger.propagate
    silenced = not logger.isEnabledFor(logging.WARNING)
    if silenced:  # by the user's logging setup: enable the warnings for our handler only
        logger.setLevel(logging.WARNING)
        logger.propagate = False
    for key in checks.funcs:  # check_dynamic's global call counters are never reset upstream
        checks.funcs[key] = 0
    tracer = sys.gettrace()  # check_dynamic ends with sys.settrace(None)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        if silenced:
            logger.setLevel(level)
            logger.propagate = propagate
        sys.settrace(tracer)


# --- the attack ---------------------------------------------------------------------------------


def _rebuild_with_iterations(aa: Any, n_iter: int) -> None:
    """Replace the APGD sub-attacks by copies with ``n_iter`` iterations.

    APGD computes its step-size checkpoints (and the l1 eps schedule) from n_iter in
    ``__init__``, so setting ``n_iter`` afterwards has no effect; everything else the version
    configured is copied over. FAB reads ``n_iter`` only while running, so setting it suffices.
    """
    from pyautoattack.autopgd_base import APGDAttack, APGDAttack_targeted

    def common(old: Any) -> dict[str, Any]:
        return {"n_iter": n_iter, "norm": old.norm, "n_restarts": old.n_restarts,
                "eps": old.eps_orig, "seed": old.seed, "eot_iter": old.eot_iter,
                "rho": old.thr_decr, "topk": old.topk, "verbose": False, "device": old.device,
                "use_largereps": old.use_largereps, "logger": old.logger}

    aa.apgd = APGDAttack(aa.model, loss=aa.apgd.loss, **common(aa.apgd))
    aa.apgd_targeted = APGDAttack_targeted(
        aa.model, n_target_classes=aa.apgd_targeted.n_target_classes, **common(aa.apgd_targeted))
    aa.fab.n_iter = n_iter


class AutoAttackRun:
    """``attack(model, x, y)``: one ``run_standard_evaluation`` over the batch.

    The AutoAttack object is built per call (construction only stores settings; the model,
    its device and class count are only known then); the module is imported once, by the
    factory.
    """

    def __init__(self, params: AutoAttackParams, threat: ThreatModel, name: str) -> None:
        import pyautoattack
        from pyautoattack import checks

        self.toolkit, self.checks = pyautoattack, checks
        self.params, self.threat, self.name = params, threat, name
        if params.version == "standard" and threat.norm == "l1" and (params.n_iter or 3) < 3:
            # APGD splits n_iter over eps stages 3·eps, 2·eps, eps (30/30/40%, the first two
            # rounded up): below 3 the last stage gets 0 or -1 iterations (a crash)
            raise ValueError(f"{name}: the standard version at l1 runs APGD in 3 eps stages and "
                             f"needs n_iter >= 3, got {params.n_iter}")
        self.components = params.components
        self.min_classes = max(MIN_CLASSES[c] for c in self.components)

    def input_problem(self, input_shape: tuple[int, ...], num_classes: int) -> str | None:
        """Why this attack cannot run on such inputs (asked by ``harness validate`` too)."""
        if num_classes < self.min_classes:
            needs = [c for c in self.components if MIN_CLASSES[c] > num_classes]
            return (f"{self.name}: {', '.join(needs)} need(s) a model with at least "
                    f"{self.min_classes} classes, not {num_classes}. Use version = \"custom\" "
                    "without them")
        return None

    def build(self, model: nn.Module, device: torch.device, num_classes: int) -> Any:
        p = self.params
        kwargs: dict[str, Any] = {"version": p.version}
        if p.version == "custom":
            kwargs["attacks"] = list(self.components)
        # device and eps always given: the defaults are 'cpu' and 0.3
        aa = self.toolkit.AutoAttack(model, norm=NORM_NAMES[self.threat.norm],
                                     eps=self.threat.eps, seed=p.seed, device=device, **kwargs)
        if p.n_restarts is not None:
            aa.apgd.n_restarts = aa.fab.n_restarts = aa.square.n_restarts = p.n_restarts
        if p.n_queries is not None:
            aa.square.n_queries = p.n_queries
        if p.n_iter is not None:
            _rebuild_with_iterations(aa, p.n_iter)
        # fixed at 9 (APGD-T at l1: 5); more than C-1 targets index past the logits
        aa.apgd_targeted.n_target_classes = min(aa.apgd_targeted.n_target_classes, num_classes - 1)
        aa.fab.n_target_classes = min(aa.fab.n_target_classes, num_classes - 1)
        return aa

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if len(x) == 0:
            return x.clone()
        device = model_device(model, x.device)
        num_classes = count_classes(model, x)
        problem = self.input_problem(tuple(x.shape[1:]), num_classes)
        if problem:
            raise ValueError(problem)
        if self.params.version == "plus" and self.threat.norm == "l1":
            raise_flag("aa-plus-l1", 'AutoAttack "plus" is designed for linf and l2; pyautoattack '
                       'asks to check its use with l1')
        with _captured_checks(self.checks), frozen_parameters(model), preserved_rng(device):
            aa = self.build(model, device, num_classes)
            # one chunk: the checks only look at the first batch_size examples
            x_adv, _ = aa.run_standard_evaluation(x, y, batch_size=len(x))  # (x_adv, y_adv)
        # APGD-l1's projection can land a float hair outside [0,1]; clamping to the input range
        # never moves a point farther from x, so it cannot hide a budget violation
        return x_adv.detach().to(dtype=x.dtype).clamp(0.0, 1.0)


def autoattack(params: AutoAttackParams, threat: ThreatModel) -> AutoAttackRun:
    return AutoAttackRun(params, threat, "autoattack")


def square_aa(params: SquareAAParams, threat: ThreatModel) -> AutoAttackRun:
    custom = AutoAttackParams(version="custom", attacks=["square"], n_restarts=params.n_restarts,
                              n_queries=params.n_queries, seed=params.seed)
    return AutoAttackRun(custom, threat, "square-aa")


@hookimpl
def harness_register_attacks(registry):
    registry.add(
        "autoattack", autoattack, params=AutoAttackParams, norms=["linf", "l2", "l1"],
        test_params={"n_iter": 3, "n_queries": 10},
        description="pyautoattack.AutoAttack (Croce & Hein 2020): standard, plus, rand or custom; "
                    "its checks become aa-* flags")
    registry.add(
        "square-aa", square_aa, params=SquareAAParams, norms=["linf", "l2", "l1"], black_box=True,
        test_params={"n_queries": 20},
        description="pyautoattack Square through AutoAttack's driver: score-based random search "
                    "(Andriushchenko et al. 2020), 5000 queries")
