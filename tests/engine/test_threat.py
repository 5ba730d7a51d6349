import math

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import nn

from harness.errors import ContractViolation
from harness.guard import GuardedAttack
from harness.threat import (
    ThreatModel,
    check_adversarial_batch,
    check_eps_unit,
    parse_eps,
    perturbation_norms,
)

LINF = ThreatModel(norm="linf", eps=0.1)


def images(n=4, shape=(1, 4, 4), seed=0):
    """Inputs in [0.2, 0.8], so any perturbation up to 0.2 stays inside [0,1]."""
    gen = torch.Generator().manual_seed(seed)
    return 0.2 + 0.6 * torch.rand((n, *shape), generator=gen)


# --- parse_eps ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("8/255", 8 / 255),
        ("0.8/255", 0.8 / 255),
        (" 8 / 255 ", 8 / 255),
        ("0.5", 0.5),
        ("1e-2", 0.01),
        (0.1, 0.1),
        (1, 1.0),
        (0, 0.0),
    ],
)
def test_parse_eps_accepts(value, expected):
    parsed = parse_eps(value)
    assert type(parsed) is float
    assert parsed == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "eps 'abc' is not a number or a fraction such as \"8/255\""),
        ("8/0", "eps '8/0' is not a number or a fraction such as \"8/255\""),
        ("1/2/3", "eps '1/2/3' is not a number or a fraction such as \"8/255\""),
        ("", "eps '' is not a number or a fraction such as \"8/255\""),
        ("/255", "eps '/255' is not a number or a fraction such as \"8/255\""),
        (True, "eps must be a number or a fraction such as \"8/255\", not a boolean"),
        (None, "eps must be a number or a fraction such as \"8/255\", got None"),
        ([0.1], "eps must be a number or a fraction such as \"8/255\", got [0.1]"),
    ],
)
def test_parse_eps_rejects(value, message):
    with pytest.raises(ValueError) as info:
        parse_eps(value)
    assert str(info.value) == message


def test_threat_model_parses_fractions_and_forbids_extras():
    threat = ThreatModel(norm="linf", eps="8/255")
    assert threat.eps == pytest.approx(8 / 255)
    assert threat.describe() == "linf eps=0.0313725"
    with pytest.raises(ValidationError):
        ThreatModel(norm="l3", eps=0.1)
    with pytest.raises(ValidationError):
        ThreatModel(norm="linf", eps=0.1, steps=3)


# --- check_eps_unit -------------------------------------------------------------------------------

DIGITS = (1, 8, 8)  # 64 dimensions, l2 diameter 8


@pytest.mark.parametrize(
    ("norm", "eps"),
    [("linf", 0.0), ("linf", 8 / 255), ("linf", 1.0), ("l2", 0.5), ("l2", 8.0), ("l1", 64.0),
     ("l0", 10.0)],
)
def test_check_eps_unit_plausible(norm, eps):
    assert check_eps_unit(norm, eps, DIGITS) is None


@pytest.mark.parametrize(
    ("norm", "eps", "shape", "message"),
    [
        ("linf", 8.0, DIGITS, "eps = 8 exceeds the whole [0,1] pixel range of a linf attack; "
                              "write it in [0,1] units, e.g. \"8/255\""),
        ("linf", 1.001, DIGITS, "eps = 1.001 exceeds the whole [0,1] pixel range of a linf attack; "
                                "write it in [0,1] units, e.g. \"1.001/255\""),
        ("l2", 8.01, DIGITS, "eps = 8.01 exceeds the l2 diameter of the [0,1] input space "
                             "(8 for inputs of shape (1, 8, 8))"),
        ("l2", 128.0, (3, 32, 32), "eps = 128 exceeds the l2 diameter of the [0,1] input space "
                                   "(55.4 for inputs of shape (3, 32, 32))"),
        ("l1", 65.0, DIGITS, "eps = 65 exceeds the 64 input dimensions of shape (1, 8, 8)"),
        ("l0", 65.0, DIGITS, "eps = 65 exceeds the 64 input dimensions of shape (1, 8, 8)"),
        ("linf", -0.1, DIGITS, "eps must be a finite number >= 0, got -0.1"),
        ("l2", math.inf, DIGITS, "eps must be a finite number >= 0, got inf"),
        ("linf", math.nan, DIGITS, "eps must be a finite number >= 0, got nan"),
    ],
)
def test_check_eps_unit_implausible(norm, eps, shape, message):
    assert check_eps_unit(norm, eps, shape) == message


# --- check_adversarial_batch ----------------------------------------------------------------------


def test_accepts_linf_perturbation_exactly_at_eps():
    """float32 x ± eps rounds to a hair above eps; the tolerance must absorb that."""
    x = images(64)
    signs = torch.randint(0, 2, x.shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    x_adv = x + 0.1 * signs.float()
    exact = perturbation_norms(x, x_adv, "linf")
    assert bool((exact > 0.1).any()), "the test should include float32 overshoot of eps"
    norms = check_adversarial_batch(x, x_adv, LINF)
    assert norms.dtype == torch.float64
    assert norms.shape == (64,)
    assert torch.allclose(norms, torch.full((64,), 0.1, dtype=torch.float64), atol=1e-7)


def test_accepts_l2_perturbation_exactly_at_eps():
    x = images(8)
    direction = torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    delta = direction / direction.flatten(1).norm(dim=1).view(-1, 1, 1, 1) * 0.5
    x_adv = (x + delta).clamp(0, 1)
    norms = check_adversarial_batch(x, x_adv, ThreatModel(norm="l2", eps=0.5))
    assert norms.max().item() == pytest.approx(0.5, abs=1e-6)


def test_unchanged_input_has_zero_norm():
    x = images()
    assert check_adversarial_batch(x, x.clone(), LINF).tolist() == [0.0] * 4


def test_l0_counts_changed_entries():
    x = images(2)
    x_adv = x.clone()
    x_adv[0, 0, 0, :3] = 0.0
    threat = ThreatModel(norm="l0", eps=3)
    assert check_adversarial_batch(x, x_adv, threat).tolist() == [3.0, 0.0]
    with pytest.raises(ContractViolation):
        check_adversarial_batch(x, x_adv, ThreatModel(norm="l0", eps=2))


def test_planted_linf_overshoot_is_caught():
    x = images()
    x_adv = x.clone()
    x_adv[2, 0, 1, 1] += 0.1 * (1 + 1e-4)  # one pixel of one example, 0.01% over
    with pytest.raises(ContractViolation) as info:
        check_adversarial_batch(x, x_adv, LINF)
    assert str(info.value).startswith(
        "attack exceeded its budget (linf eps=0.1): 1 example(s) up to 0.10001")


def test_overshoot_allowed_for_minimum_norm_attacks():
    x = images()
    x_adv = x + 0.15
    norms = check_adversarial_batch(x, x_adv, LINF, bounded=False)
    assert torch.allclose(norms, torch.full((4,), 0.15, dtype=torch.float64), atol=1e-6)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_output_is_caught(bad):
    x = images()
    x_adv = x.clone()
    x_adv[1, 0, 0, 0] = bad
    x_adv[3, 0, 2, 2] = bad
    with pytest.raises(ContractViolation, match=r"^attack returned non-finite values for 2 "
                                                r"example\(s\)$"):
        check_adversarial_batch(x, x_adv, LINF)


@pytest.mark.parametrize(("value", "span"), [(-0.01, "[-0.01, "), (1.01, ", 1.01]")])
def test_output_outside_unit_range_is_caught(value, span):
    x = torch.full((2, 1, 4, 4), 0.5)
    x[0, 0, 0, 0] = 0.0 if value < 0 else 1.0
    x_adv = x.clone()
    x_adv[0, 0, 0, 0] = value  # only 0.01 away: within eps, but outside [0,1]
    with pytest.raises(ContractViolation) as info:
        check_adversarial_batch(x, x_adv, LINF)
    assert str(info.value).startswith("attack left the input range [0,1]: values span ")
    assert span in str(info.value)


def test_outputs_at_range_bounds_are_accepted():
    x = torch.tensor([[[[0.05, 0.95]]]])
    x_adv = torch.tensor([[[[0.0, 1.0]]]])
    assert check_adversarial_batch(x, x_adv, LINF).item() == pytest.approx(0.05, abs=1e-7)


@pytest.mark.parametrize(
    ("x_adv", "message"),
    [
        (torch.zeros(4, 1, 4), "attack returned shape (4, 1, 4) torch.float32, "
                               "expected (4, 1, 4, 4) torch.float32"),
        (torch.zeros(3, 1, 4, 4), "attack returned shape (3, 1, 4, 4) torch.float32, "
                                  "expected (4, 1, 4, 4) torch.float32"),
        (torch.zeros(4, 1, 4, 4, dtype=torch.float64),
         "attack returned shape (4, 1, 4, 4) torch.float64, expected (4, 1, 4, 4) torch.float32"),
        ([0.0], "attack returned list, expected a torch.Tensor"),
        (None, "attack returned NoneType, expected a torch.Tensor"),
    ],
)
def test_wrong_shape_dtype_or_type_is_caught(x_adv, message):
    with pytest.raises(ContractViolation) as info:
        check_adversarial_batch(images(), x_adv, LINF)
    assert str(info.value) == message


# --- GuardedAttack --------------------------------------------------------------------------------


def tiny_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Dropout(0.5), nn.ReLU(), nn.Linear(8, 3))


def labels(n=4):
    return torch.arange(n) % 3


def fgsm_like(eps):
    """A correct linf attack that, like many toolkits, writes parameter gradients."""

    def attack(model, x, y):
        x = x.clone().requires_grad_(True)
        F.cross_entropy(model(x), y).backward()
        return (x + eps * x.grad.sign()).clamp(0, 1).detach()

    return attack


def test_guard_attacks_in_eval_mode_and_restores_train_mode():
    model = tiny_model().train()
    seen = []

    def attack(m, x, y):
        seen.append((m.training, m[2].training))
        m.train()  # a toolkit that flips the mode itself
        return x

    GuardedAttack(attack, LINF)(model, images(), labels())
    assert seen == [(False, False)]
    assert model.training and model[2].training


def test_guard_keeps_eval_mode():
    model = tiny_model().eval()

    def attack(m, x, y):
        m.train()
        return x

    GuardedAttack(attack, LINF)(model, images(), labels())
    assert not model.training
    assert not any(m.training for m in model.modules())


def test_guard_restores_mode_when_attack_raises():
    model = tiny_model().train()

    def attack(m, x, y):
        raise RuntimeError("toolkit crashed")

    with pytest.raises(RuntimeError, match="toolkit crashed"):
        GuardedAttack(attack, LINF)(model, images(), labels())
    assert model.training


def test_guard_restores_mixed_submodule_modes():
    model = tiny_model().train()
    model[2].eval()  # e.g. dropout frozen during fine-tuning
    GuardedAttack(lambda m, x, y: x, LINF)(model, images(), labels())
    assert model.training
    assert not model[2].training


def test_guard_restores_existing_grads_and_drops_new_ones():
    model = tiny_model().train()
    first, *rest = list(model.parameters())
    first.grad = torch.full_like(first, 7.0)  # a training step's gradients, mid-accumulation
    guarded = GuardedAttack(fgsm_like(0.1), LINF)
    x_adv = guarded(model, images(), labels())

    assert torch.equal(first.grad, torch.full_like(first, 7.0))
    assert all(p.grad is None for p in rest)
    assert not torch.equal(x_adv, images())  # the attack did run (and called backward)


def test_guard_under_no_grad_still_lets_attack_compute_gradients():
    model = tiny_model()
    with torch.no_grad():
        x_adv, norms = GuardedAttack(fgsm_like(0.1), LINF).run(model, images(), labels())
    assert torch.allclose(norms, torch.full((4,), 0.1, dtype=torch.float64), atol=1e-6)
    assert not x_adv.requires_grad


def test_guard_detaches_output():
    x = images()
    x_adv = GuardedAttack(lambda m, x, y: (x * 1.0).requires_grad_(True), LINF)(
        tiny_model(), x, labels())
    assert not x_adv.requires_grad
    assert x_adv.grad_fn is None


def test_guard_raises_for_overshooting_attack_and_still_restores():
    model = tiny_model().train()
    first = next(model.parameters())
    first.grad = torch.ones_like(first)
    guarded = GuardedAttack(fgsm_like(0.2), LINF)
    with pytest.raises(ContractViolation, match=r"^attack exceeded its budget \(linf eps=0\.1\): "
                                                r"4 example\(s\) up to 0\.2"):
        guarded(model, images(), labels())
    assert model.training
    assert torch.equal(first.grad, torch.ones_like(first))


def test_guard_minimum_norm_attack_may_overshoot():
    x_adv, norms = GuardedAttack(fgsm_like(0.2), LINF, minimum_norm=True).run(
        tiny_model(), images(), labels())
    assert x_adv.shape == (4, 1, 4, 4)
    assert norms.max().item() == pytest.approx(0.2, abs=1e-6)


@pytest.mark.parametrize(("raw", "eps", "expected"), [
    ("2/255", 0.5, 2 / 255), (0.01, 0.5, 0.01), ("eps/8", 0.4, 0.05), ("0.075*eps", 2.0, 0.15),
    ("3/40*eps", 2.0, 0.15), ("2.5*eps/10", 0.1, 0.025),
])
def test_step_size_absolute_or_relative_to_eps(raw, eps, expected):
    from harness import StepSize

    assert StepSize.model_validate(raw).absolute(eps) == pytest.approx(expected)


@pytest.mark.parametrize("raw", ["eps/eps", "abc", "eps*x", "-1", 0])
def test_step_size_rejects_nonsense(raw):
    from pydantic import ValidationError

    from harness import StepSize

    with pytest.raises(ValidationError):
        StepSize.model_validate(raw)
