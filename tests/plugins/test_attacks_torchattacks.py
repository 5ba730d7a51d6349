"""The torchattacks plugin: faithful to the toolkit, CW-inf, targeting, scoring and budgets.

Everything runs on tiny CNNs fitted to separable 8×8 data, so each test takes about a second.
"""

from __future__ import annotations

import math

import pytest
import torch
import torchattacks
from pydantic import ValidationError
from torch import nn

from harness import ContractViolation, DataInfo, ThreatModel, normalized
from harness.evaluate import clean_correct, run_attack
from harness.flags import collect_flags
from harness.guard import GuardedAttack
from harness.seeding import seed_everything

PLUGIN = "torchattacks_attacks"


def tiny_model(channels: int = 3, classes: int = 4, n: int = 32, fit: bool = True):
    """A small CNN fitted to noisy class prototypes; returns (model, x, y) of clean-correct points."""
    seed_everything(0)
    protos = torch.rand(classes, channels, 8, 8)
    y = torch.arange(2 * n) % classes
    x = (protos[y] + 0.1 * torch.randn(2 * n, channels, 8, 8)).clamp(0, 1)
    backbone = nn.Sequential(nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                             nn.Linear(8 * 64, classes))
    model = normalized(backbone, DataInfo((channels, 8, 8), classes, (0.5,) * channels,
                                          (0.25,) * channels))
    if not fit:
        return model.eval(), x[:n], y[:n]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    model.eval()
    correct = clean_correct(model, x, y, 256)
    assert correct.float().mean() > 0.9
    return model, x[correct][:n], y[correct][:n]


@pytest.fixture(scope="module")
def tiny():
    return tiny_model()


@pytest.fixture(scope="module")
def tiny_gray():
    return tiny_model(channels=1, n=16)


@pytest.fixture(scope="module")
def plugin(components):
    return components.pm.get_plugin(PLUGIN)


def build(components, name: str, norm: str, eps: float, **params) -> GuardedAttack:
    entry = components.attacks.get(name)
    threat = ThreatModel(norm=norm, eps=eps)
    return GuardedAttack(entry.factory(entry.make_params(params), threat), threat,
                         entry.minimum_norm)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


# --- faithful to the toolkit ---------------------------------------------------------------------


@pytest.mark.parametrize(("name", "norm", "eps", "toolkit_class"), [
    ("pgd", "linf", 0.1, torchattacks.PGD), ("pgdl2", "l2", 1.0, torchattacks.PGDL2)])
def test_pgd_is_the_toolkit_pgd_bit_for_bit(components, tiny, name, norm, eps, toolkit_class):
    model, x, y = tiny
    attack = build(components, name, norm, eps, steps=5, step_size="eps/4")
    model.train()  # the engine's guard attacks in eval mode, as torchattacks does
    torch.manual_seed(7)
    ours = attack(model, x, y)
    model.eval()
    torch.manual_seed(7)
    theirs = toolkit_class(model, eps=eps, alpha=eps / 4, steps=5, random_start=True)(x, y)
    assert torch.equal(ours, theirs)
    assert not torch.equal(ours, x)


# --- CW-inf: PGD on the Carlini-Wagner margin --------------------------------------------------


def test_margin_objective_is_robustwrn_cw_loss(plugin):
    logits = torch.randn(64, 10) * 5 - 3  # many negative logits: where torchattacks' CW is wrong
    labels = torch.randint(0, 10, (64,))
    # RobustWRN evaluator.py: -relu(correct_logit - top other logit)
    top2 = logits.argsort(dim=1)[:, -2:]
    other = torch.where(top2[:, -1] == labels, top2[:, -2], top2[:, -1])
    expected = -nn.functional.relu(logits.gather(1, labels[:, None]) - logits.gather(1, other[:, None]))
    assert torch.allclose(plugin.patches.margin_objective(logits, labels, 0.0, False), expected.sum())


def test_cw_inf_is_at_least_as_strong_as_fgsm(components, tiny):
    model, x, y = tiny
    eps = 0.2  # the tiny model resists up to about 0.15, then falls
    fgsm = build(components, "fgsm", "linf", eps)
    cw_inf = build(components, "pgd", "linf", eps, steps=20, step_size="eps/8", loss="margin")
    ce = build(components, "pgd", "linf", eps, steps=20, step_size="eps/8")
    torch.manual_seed(0)
    fgsm_acc = accuracy(model, fgsm(model, x, y), y)
    torch.manual_seed(0)
    x_margin = cw_inf(model, x, y)
    torch.manual_seed(0)
    x_ce = ce(model, x, y)
    assert fgsm_acc < 1.0, "eps too small to compare anything"
    assert accuracy(model, x_margin, y) <= fgsm_acc
    assert not torch.equal(x_margin, x_ce), "the margin loss changed nothing"


def test_cw_inf_presets_follow_the_protocol(components):
    preset = components.catalogue.get("attacks", "cw-inf-linf-8")
    assert (preset.spec.factory, preset.spec.norm, preset.spec.eps) == ("pgd", "linf", 8 / 255)
    params = components.attacks.get("pgd").make_params(preset.spec.params)
    assert (params.steps, params.loss, params.random_start) == (20, "margin", True)
    assert params.alpha(8 / 255) == pytest.approx(0.8 / 255)


# --- targeted modes -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "params"), [
    ("pgd", {"steps": 10}), ("mifgsm", {"steps": 10}),
    ("spsa", {"steps": 15, "samples": 32, "lr": 0.05}), ("cw", {"steps": 30, "c": 10.0, "lr": 0.05})])
def test_targeted_attacks_hit_their_targets_more_often_than_chance(components, tiny, capsys,
                                                                   name, params):
    model, x, y = tiny
    norm, eps = ("l2", 8.0) if name == "cw" else ("linf", 0.3)
    attack = build(components, name, norm, eps, targeted="next", **params)
    torch.manual_seed(0)
    with torch.no_grad():
        predicted = model(attack(model, x, y)).argmax(1)
    chance = 1 / 4
    assert float((predicted == (y + 1) % 4).float().mean()) > 2 * chance
    assert capsys.readouterr().out == "", "torchattacks' mode messages must be silenced"


def test_least_likely_targets_come_from_the_clean_logits(components, tiny):
    model, x, y = tiny
    attack = build(components, "pgd", "linf", 0.3, steps=10, targeted="least-likely")
    with torch.no_grad():
        least = model(x).argmin(1)
    torch.manual_seed(0)
    with torch.no_grad():
        predicted = model(attack(model, x, y)).argmax(1)
    assert float((predicted == least).float().mean()) > 0.5


def test_class_count_is_read_from_the_model(components, tiny):
    model, x, y = tiny_model(classes=3, n=4, fit=False)
    with pytest.raises(ValueError, match="at least 4 classes"):
        build(components, "apgdt", "linf", 0.1, steps=2)(model, x, y)
    model, x, y = tiny  # 4 classes: 3 target classes, not the toolkit's default 9
    torch.manual_seed(0)
    x_adv = build(components, "fab", "linf", 0.3, steps=5, multi_targeted=True)(model, x, y)
    assert accuracy(model, x_adv, y) < 1.0


# --- minimum-norm attacks are scored at the budget ------------------------------------------------


def test_cw_beyond_eps_counts_as_robust_not_as_a_violation(components, tiny):
    model, x, y = tiny
    settings = dict(steps=30, c=10.0, lr=0.05)
    x_adv, norms = build(components, "cw", "l2", 1.0, **settings).run(model, x, y)
    with torch.no_grad():
        fooled = model(x_adv).argmax(1) != y
    eps = float(norms[fooled].median())  # CW draws no random numbers: reruns give these points
    attack = build(components, "cw", "l2", eps, **settings)
    assert attack.minimum_norm
    outcome = run_attack(model, attack, x, y, clean_correct(model, x, y, 64), 64, 0)
    beyond = norms > eps
    assert bool((fooled & beyond).any()) and bool((fooled & ~beyond).any())
    assert torch.equal(outcome.robust, ~fooled | beyond)  # broken only if fooled within eps
    bounded = GuardedAttack(attack.attack, attack.threat, minimum_norm=False)
    with pytest.raises(ContractViolation, match="exceeded its budget"):
        bounded.run(model, x, y)


class Shifted(nn.Module):
    """All logits pushed negative: torchattacks' CW margin is then identically zero."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) - 1000.0


def test_cw_margin_is_right_for_negative_logits(components, tiny):
    model, x, y = tiny
    shifted = Shifted(model).eval()
    ours = build(components, "cw", "l2", 8.0, steps=30, c=10.0, lr=0.05)(shifted, x, y)
    theirs = torchattacks.CW(shifted, c=10.0, steps=30, lr=0.05)(x, y)
    assert accuracy(shifted, theirs, y) == 1.0  # the upstream bug: nothing to optimise
    assert accuracy(shifted, ours, y) < 0.5


def test_non_finite_outputs_come_back_unperturbed_with_a_flag(plugin, tiny):
    model, x, y = tiny

    class Broken:  # a torchattacks-like object returning NaN and a value just below 0
        device = None

        def set_device(self, device):
            self.device = device

        def __call__(self, images, labels):
            out = images.clone()
            out[0] = math.nan
            out[1] = out[1] - 1e-8
            return out

    attack = plugin.running.ToolkitAttack("broken", lambda model, classes: Broken())
    with collect_flags() as flags:
        x_adv = attack(model, x, y)
    assert "non-finite-output" in flags
    assert torch.equal(x_adv[0], x[0])
    assert bool(torch.isfinite(x_adv).all()) and float(x_adv.min()) >= 0.0


# --- budgets and the toolkit's quirks ------------------------------------------------------------


def bounded_cases() -> list[tuple[str, str]]:
    from harness.session import load_components

    attacks = load_components(autoload=False).attacks
    return [(e.name, norm) for e in attacks.list()
            if e.plugin == PLUGIN and not e.minimum_norm for norm in e.norms]


BOUNDED = bounded_cases()


@pytest.mark.parametrize("bounded_case", BOUNDED, ids=[f"{n}-{m}" for n, m in BOUNDED])
def test_every_bounded_registration_stays_in_its_declared_ball(components, tiny_gray, bounded_case):
    """On 1-channel inputs (TIFGSM/PIFGSM pad to 3) at budgets other than the conformance ones."""
    name, norm = bounded_case
    model, x, y = tiny_gray
    entry = components.attacks.get(name)
    eps = {"linf": 0.25, "l2": 2.0}[norm]
    attack = build(components, name, norm, eps, **entry.test_params)
    seed_everything(0)
    _, norms = attack.run(model, x, y)  # raises ContractViolation outside the ball
    assert float(norms.max()) > 0, f"{name} did not move any example"


def test_more_than_three_channels_is_a_clear_error(components):
    model, x, y = tiny_model(channels=4, n=4, fit=False)
    with pytest.raises(ValueError, match="hard-codes 3 input channels"):
        build(components, "tifgsm", "linf", 0.1, steps=2, len_kernel=3)(model, x, y)


def test_toolkit_reseeding_leaves_the_global_generator_alone(components, tiny):
    model, x, y = tiny
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build(components, "apgd", "linf", 0.1, steps=3, seed=5)(model, x, y)
    assert torch.equal(torch.rand(3), expected)


def test_parameter_checks(components):
    with pytest.raises(ValidationError, match="abort_early"):
        components.attacks.get("eadl1").make_params({"max_iterations": 5})
    with pytest.raises(ValidationError, match="kappa applies"):
        components.attacks.get("pgd").make_params({"kappa": 1.0})
    with pytest.raises(ValidationError):
        components.attacks.get("fab").make_params({"targeted": "random"})  # FAB-T only
