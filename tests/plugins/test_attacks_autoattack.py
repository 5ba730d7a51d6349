"""The AutoAttack plugin (plugins/autoattack.py) against pyautoattack called directly.

A small CNN is fitted to real 8×8 digits once per module; sub-attacks run with few iterations
so the whole file stays cheap on a 2-core CPU. ``components`` is the session fixture of
conftest.py (built-in plugins and catalogue).
"""

from __future__ import annotations

import logging

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from harness import ThreatModel
from harness.flags import collect_flags
from harness.guard import GuardedAttack
from harness.seeding import seed_everything

N_ITER, N_QUERIES = 3, 40
EPS = {"linf": 0.1, "l2": 0.5, "l1": 2.0}
NORM_NAMES = {"linf": "Linf", "l2": "L2", "l1": "L1"}


@pytest.fixture(scope="module")
def digits(fit_on_digits):
    """(model, x, y): a small CNN trained briefly on digits; 24 clean-correct test examples."""
    seed_everything(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(8 * 64, 10))
    return fit_on_digits(model, epochs=2, keep=24, min_accuracy=0.8)


class FirstClasses(nn.Module):
    """The model restricted to its first ``classes`` logits: a genuine C-class classifier."""

    def __init__(self, model: nn.Module, classes: int) -> None:
        super().__init__()
        self.model, self.classes = model, classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[:, : self.classes]


def few_classes(digits, classes: int):
    model, x, y = digits
    small = FirstClasses(model, classes).eval()
    with torch.no_grad():
        keep = small(x).argmax(1) == y  # only examples of the first classes can be correct
    assert keep.sum() >= 4
    return small, x[keep], y[keep]


def attack(components, name: str, norm: str, eps: float, **params):
    entry = components.attacks.get(name)
    threat = ThreatModel(norm=norm, eps=eps)
    return GuardedAttack(entry.factory(entry.make_params(params), threat), threat,
                         entry.minimum_norm)


def run(guarded: GuardedAttack, model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """(x_adv, per-example robust flags, flags raised) as the engine would get them."""
    with collect_flags() as flags:
        x_adv = guarded(model, x, y)
    with torch.no_grad():
        robust = model(x_adv).argmax(1) == y
    return x_adv, robust, flags


def direct_autoattack(model, x, y, norm: str, eps: float, classes: int = 10):
    """pyautoattack's standard version with the same seed and iterations, set up by hand."""
    from pyautoattack import AutoAttack
    from pyautoattack.autopgd_base import APGDAttack, APGDAttack_targeted

    aa = AutoAttack(model, norm=NORM_NAMES[norm], eps=eps, seed=0, device="cpu",
                    version="standard")
    large = norm == "l1"  # standard l1: APGD with 5 restarts and the 3/2/1 eps schedule
    aa.apgd = APGDAttack(model, n_iter=N_ITER, norm=NORM_NAMES[norm], eps=eps, seed=0,
                         n_restarts=5 if large else 1, use_largereps=large, device="cpu",
                         logger=aa.logger)
    aa.apgd_targeted = APGDAttack_targeted(
        model, n_iter=N_ITER, norm=NORM_NAMES[norm], eps=eps, seed=0, use_largereps=large,
        n_target_classes=min(5 if large else 9, classes - 1), device="cpu", logger=aa.logger)
    aa.fab.n_iter = N_ITER
    aa.fab.n_target_classes = min(9, classes - 1)
    aa.square.n_queries = N_QUERIES
    model.eval()
    x_adv, y_adv = aa.run_standard_evaluation(x, y, batch_size=len(x))
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        robust = model(x_adv).argmax(1) == y
    assert torch.equal(robust, y_adv == y)
    return x_adv, robust


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_same_result_as_pyautoattack_directly(components, digits, norm):
    model, x, y = digits
    guarded = attack(components, "autoattack", norm, EPS[norm], n_iter=N_ITER,
                     n_queries=N_QUERIES)
    seed_everything(1)
    x_adv, robust, flags = run(guarded, model, x, y)
    seed_everything(2)  # a different global RNG state: the sub-attacks seed themselves
    x_direct, robust_direct = direct_autoattack(model, x, y, norm, EPS[norm])
    assert 0 < robust.sum() < len(y), "the comparison needs broken and robust examples"
    assert torch.equal(robust, robust_direct)
    assert torch.equal(x_adv, x_direct)
    assert flags == {}, "a plain trained CNN should pass AutoAttack's checks"


def test_fewer_than_ten_classes(components, digits):
    model, x, y = few_classes(digits, 5)
    guarded = attack(components, "autoattack", "linf", EPS["linf"], n_iter=N_ITER,
                     n_queries=N_QUERIES)
    aa = guarded.attack.build(model, torch.device("cpu"), 5)
    assert aa.apgd_targeted.n_target_classes == aa.fab.n_target_classes == 4
    _, robust, flags = run(guarded, model, x, y)
    _, robust_direct = direct_autoattack(model, x, y, "linf", EPS["linf"], classes=5)
    assert torch.equal(robust, robust_direct)
    assert "aa-few-classes" not in flags  # the targets were capped at C-1


def test_too_few_classes_for_dlr(components, digits):
    model, x, y = few_classes(digits, 3)
    standard = attack(components, "autoattack", "linf", EPS["linf"], n_iter=N_ITER)
    with pytest.raises(ValueError, match="apgd-t need"):
        standard(model, x, y)
    dlr = attack(components, "autoattack", "linf", EPS["linf"], version="custom",
                 attacks=["apgd-ce", "apgd-dlr"], n_iter=N_ITER)
    _, _, flags = run(dlr, model, x, y)
    assert "targeted DLR" in flags["aa-few-classes"]


class Dropout(nn.Module):
    """Dropout kept active in eval mode: a randomized model."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(nn.functional.dropout(x, 0.3, training=True))


class Softmax(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).softmax(1)


class Dynamic(nn.Module):
    """Takes an input-gradient step inside forward: a 'dynamic' (test-time optimising) defense."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            z = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.model(z).logsumexp(1).sum(), z)
        return self.model(x - 0.01 * grad.sign())


class Quantized(nn.Module):
    """Rounds inputs to 17 gray levels: zero input gradients, yet a random search still works."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(torch.round(x * 16) / 16)


APGD_CE = {"version": "custom", "attacks": ["apgd-ce"], "n_iter": 2}


@pytest.mark.parametrize(("wrapper", "flag"), [(Dropout, "aa-randomized"),
                                               (Softmax, "aa-softmax-output"),
                                               (Dynamic, "aa-dynamic")])
def test_checks_become_flags(components, digits, capsys, wrapper, flag):
    model, x, y = digits
    guarded = attack(components, "autoattack", "linf", EPS["linf"], **APGD_CE)
    _, _, flags = run(guarded, wrapper(model).eval(), x, y)
    assert flag in flags and flags[flag].startswith("AutoAttack check: ")
    assert "flags_doc.md" not in flags[flag]
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "", "warnings must become flags, not output"
    _, _, clean_flags = run(guarded, model, x, y)  # checks and counters do not leak into the next
    assert clean_flags == {}


def test_checks_reach_flags_when_logging_is_silenced(components, digits):
    model, x, y = digits
    logger = logging.getLogger("auto-attack")  # pyautoattack's logger
    logger.setLevel(logging.ERROR)
    try:
        guarded = attack(components, "autoattack", "linf", EPS["linf"], **APGD_CE)
        _, _, flags = run(guarded, Softmax(model).eval(), x, y)
        assert "aa-softmax-output" in flags
        assert logger.level == logging.ERROR and logger.propagate and not logger.handlers
    finally:
        logger.setLevel(logging.NOTSET)


def test_plus_at_l1_is_flagged(components, digits):
    model, x, y = digits
    guarded = attack(components, "autoattack", "l1", EPS["l1"], version="plus", n_iter=1,
                     n_queries=5)
    _, _, flags = run(guarded, model, x[:4], y[:4])
    assert "aa-plus-l1" in flags


def test_gradient_masking_flags(components, digits):
    model, x, y = digits
    guarded = attack(components, "autoattack", "linf", EPS["linf"], n_iter=N_ITER, n_queries=200)
    _, robust, flags = run(guarded, Quantized(model).eval(), x, y)
    assert "aa-zero-gradients" in flags  # checked by APGD-T on its DLR gradient
    assert "aa-square-beats-whitebox" in flags
    assert not robust.all()


def test_modes_gradients_and_rng_left_alone(components, digits):
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Dropout(0.2), nn.Flatten(), nn.Linear(4 * 64, 10))
    x = digits[1]
    with torch.no_grad():
        y = model.eval()(x).argmax(1)  # its own predictions: every example gets attacked
    bn, dropout = model[1], model[3]
    model.train()
    dropout.eval()  # a module left in eval inside a training model must come back in eval
    stats = bn.running_mean.clone()
    fab = attack(components, "autoattack", "linf", EPS["linf"], version="custom",
                 attacks=["fab-t", "apgd-ce"], n_iter=N_ITER)
    rng = torch.random.get_rng_state()
    fab(model, x, y)
    assert model.training and bn.training and not dropout.training
    assert torch.equal(bn.running_mean, stats), "the model was attacked in train mode"
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.random.get_rng_state(), rng), "the global RNG was reseeded"
    # without the guard too: FAB's .backward() must not write parameter gradients
    fab.attack(model.eval(), x, y)
    assert all(p.grad is None and p.requires_grad for p in model.parameters())


def test_square_aa_is_black_box(components, digits):
    entry = components.attacks.get("square-aa")
    assert entry.black_box and entry.norms == ("linf", "l2", "l1")
    model, x, y = digits
    _, robust, flags = run(attack(components, "square-aa", "linf", EPS["linf"], n_queries=100),
                           model, x, y)
    assert not robust.all() and flags == {}


@pytest.mark.parametrize(("params", "message"), [
    ({"attacks": ["apgd-ce"]}, 'applies to version = "custom" only'),
    ({"version": "plus", "attacks": ["fab"]}, 'applies to version = "custom" only'),
    ({"version": "custom"}, "needs a component list"),
    ({"version": "custom", "attacks": ["apgd-ce", "apgd-ce"]}, "twice"),
    ({"version": "custom", "attacks": ["pgd"]}, "apgd-ce"),
    ({"version": "rand", "n_queries": 100}, "Square is not run"),
    ({"n_iter": 0}, "greater than or equal to 1"),
    ({"steps": 10}, "Extra inputs are not permitted"),
])
def test_params_validation(components, params, message):
    with pytest.raises(ValidationError, match=message):
        components.attacks.get("autoattack").make_params(params)


def test_standard_l1_needs_three_iterations(components):
    entry = components.attacks.get("autoattack")
    with pytest.raises(ValueError, match="n_iter >= 3"):
        entry.factory(entry.make_params({"n_iter": 2}), ThreatModel(norm="l1", eps=2.0))
    entry.factory(entry.make_params({"n_iter": 2}), ThreatModel(norm="l2", eps=0.5))


def test_presets(components, write_suite, run_cli):
    names = [p.name for p in components.catalogue.items("attacks") if p.name.startswith("aa-")]
    assert {"aa-standard-linf-8", "aa-standard-l2-0.5", "aa-standard-l1-12", "aa-plus-linf-8",
            "aa-rand-linf-8", "aa-apgd-ce-linf-8", "aa-standard-linf-0.1", "aa-standard-l2-1.0",
            "aa-fast-linf-0.1"} <= set(names)
    preset = components.catalogue.get("attacks", "aa-standard-linf-8")
    assert preset.spec.factory == "autoattack" and abs(preset.spec.eps - 8 / 255) < 1e-12
    suite = write_suite(f"""
        datasets = ["digits"]
        architectures = ["small-cnn-digits"]
        recipes = ["standard-digits"]
        attacks = {names!r}
    """.replace("'", '"'))
    result = run_cli("validate", suite)
    assert result.exit_code == 0, result.output
