"""Training defenses (plugins/defenses/): losses against hand computations, AWP's exact weight
restoration, Fast-AT's catastrophic-overfitting detector, Free-AT's replays, the recipe presets.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness import ThreatModel, UserError
from harness.flags import collect_flags
from harness.plan import build_plan
from harness.runner import Runner
from harness.session import load_components
from harness.store import Store
from harness.suite import load_suite
from harness.train import Trainer, TrainingDiverged

COMPONENTS = load_components(autoload=False)
LINF = ThreatModel(norm="linf", eps=0.1)

SUITE = """
datasets = [{{ name = "synthetic", params = {{ train_size = 192, test_size = 32 }} }}]
architectures = [{{ name = "small-cnn", params = {{ channels = 4, hidden = 16 }} }}]
recipes = [{recipe}]
"""

PGD = 'attack = { name = "pgd", eps = 0.1, params = { steps = 2, step_size = "eps/2" } }'
TPGD = 'attack = { name = "tpgd", eps = 0.1, params = { steps = 2, step_size = "eps/2" } }'
PROBE = ('validation = { fraction = 0.25, max_examples = 16, attack = { name = "pgd", eps = 0.1, '
         'params = { steps = 3 } } }')


def recipe(defense: str, attack: str = PGD, epochs: int = 5, extra: str = "") -> str:
    return (f'{{ name = "r", defense = "{defense}", {attack}, epochs = {epochs}, batch_size = 32, '
            f'optimizer = "adam", lr = 0.01, weight_decay = 0{extra} }}')


def trainer(tmp_path, recipe_text: str) -> Trainer:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "suite.toml"
    path.write_text(SUITE.format(recipe=recipe_text))
    plan = build_plan(COMPONENTS, load_suite(path))
    runner = Runner(COMPONENTS, Store(tmp_path / "out"), torch.device("cpu"), tmp_path)
    cell = plan.train_cells[0]
    return Trainer(COMPONENTS, cell, runner.dataset(cell.dataset, plan), torch.device("cpu"))


def defense(name: str, attack, **params):
    entry = COMPONENTS.defenses.get(name)
    return entry.factory(entry.make_params(params), attack)


class FixedAttack:
    """A training attack that returns a fixed batch (so a loss can be checked by hand)."""

    def __init__(self, x_adv: torch.Tensor, threat: ThreatModel = LINF) -> None:
        self.x_adv, self.threat, self.calls = x_adv, threat, 0

    def __call__(self, model, x, y):
        self.calls += 1
        return self.x_adv


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture
def batch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 5))
    with torch.no_grad():  # confident outputs, so that KL(p||q) and KL(q||p) differ clearly
        for param in model.parameters():
            param.mul_(4)
    x = torch.rand(8, 1, 4, 4)
    x_adv = (x + 0.3 * torch.randn_like(x)).clamp(0, 1)
    y = torch.arange(8) % 5
    return model, x, x_adv, y


def grads_of(model: nn.Module, loss: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, list(model.parameters())))


# --- losses against formulas written out here ----------------------------------------------------


def test_trades_loss_matches_the_formula(batch):
    model, x, x_adv, y = batch
    beta = 6.0
    p = torch.softmax(model(x), 1)
    q = torch.softmax(model(x_adv), 1)
    ce = -torch.log(p[torch.arange(8), y]).mean()
    kl = (p * (torch.log(p) - torch.log(q))).sum(1).mean()  # KL(clean || adversarial)
    reverse = (q * (torch.log(q) - torch.log(p))).sum(1).mean()
    assert abs(kl - reverse) > 1e-3 * kl  # the batch tells the two directions apart
    expected = ce + beta * kl

    got = defense("trades", FixedAttack(x_adv), beta=beta).loss(model, x, y)
    ce_only = defense("trades", FixedAttack(x_adv), beta=0.0).loss(model, x, y)
    assert ce_only.item() == pytest.approx(ce.item(), rel=1e-6)
    assert (got - ce_only).item() == pytest.approx(beta * kl.item(), rel=1e-4)
    for a, b in zip(grads_of(model, got), grads_of(model, expected), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)  # gradient flows through both


def test_mart_loss_matches_the_formula(batch):
    model, x, x_adv, y = batch
    beta = 6.0
    p = torch.softmax(model(x), 1)
    q = torch.softmax(model(x_adv), 1)
    rows = torch.arange(8)
    wrong = q.clone()
    wrong[rows, y] = -1.0
    bce = -torch.log(q[rows, y]) - torch.log(1 - wrong.max(1).values)  # boosted CE on x_adv
    kl = (p * (torch.log(p) - torch.log(q))).sum(1)
    term = (kl * (1 - p[rows, y])).mean()  # KL weighted by clean misclassification
    assert abs(term - (kl * (1 - q[rows, y])).mean()) > 1e-3 * term
    expected = bce.mean() + beta * term

    got = defense("mart", FixedAttack(x_adv), beta=beta).loss(model, x, y)
    bce_only = defense("mart", FixedAttack(x_adv), beta=0.0).loss(model, x, y)
    assert bce_only.item() == pytest.approx(bce.mean().item(), rel=2e-4)  # authors' 1e-4 offset
    assert (got - bce_only).item() == pytest.approx(beta * term.item(), rel=1e-4)
    for a, b in zip(grads_of(model, got), grads_of(model, expected), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


def test_alp_loss_variants(batch):
    model, x, x_adv, y = batch
    z, z_adv = model(x), model(x_adv)
    ce = F.cross_entropy(z, y) + F.cross_entropy(z_adv, y)
    distance = ((z - z_adv) ** 2).sum(1)
    for pairing, pair in [("l2", distance.sqrt().mean()), ("squared", distance.mean()),
                          ("mse", distance.mean() / 5)]:
        got = defense("alp", FixedAttack(x_adv), weight=0.5, pairing=pairing).loss(model, x, y)
        assert got.item() == pytest.approx((ce + 0.5 * pair).item(), rel=1e-5), pairing
    adversarial_only = defense("alp", FixedAttack(x_adv), clean_loss=False).loss(model, x, y)
    expected = F.cross_entropy(z_adv, y) + 0.5 * distance.sqrt().mean()
    assert adversarial_only.item() == pytest.approx(expected.item(), rel=1e-5)


# --- each defense trains ------------------------------------------------------------------------

TRAINING = {
    "trades": recipe("trades", TPGD),
    "mart": recipe("mart"),
    "alp": recipe("alp"),
    "fast-at": recipe("fast-at", 'attack = { name = "ffgsm", eps = 0.1 }', extra=f", {PROBE}"),
    "free-at": recipe("free-at", 'attack = { name = "fgsm", eps = 0.1 }', epochs=2,
                      extra=", defense_params = { replays = 2 }"),
    "awp-pgd-at": recipe("awp", extra=", defense_params = { inner = \"pgd-at\" }"),
    "awp-trades": recipe("awp", TPGD, extra=", defense_params = { inner = \"trades\" }"),
}


@pytest.mark.parametrize("name", list(TRAINING))
def test_each_defense_lowers_its_loss(tmp_path, name):
    result = trainer(tmp_path, TRAINING[name]).run()
    losses = [record["loss"] for record in result.history]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.7 * losses[0], losses


# --- AWP ----------------------------------------------------------------------------------------


def test_awp_perturbs_each_layer_by_its_norm_and_restores_weights_exactly(batch):
    model, x, x_adv, y = batch
    awp = defense("awp", FixedAttack(x_adv), inner="pgd-at", gamma=0.01)
    before = weights(model)
    seen: dict[str, object] = {}

    def step(loss, before_update=None):  # the engine's order: backward, before_update, update
        seen["perturbed"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        loss.backward()
        before_update()
        seen["restored"] = weights(model)
        seen["grads"] = [p.grad.clone() for p in model.parameters()]

    awp.train_batch(model, x, y, step)
    after = weights(model)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(torch.equal(before[k], seen["restored"][k]) for k in before)
    for name, w in before.items():  # only conv/linear weights move, by gamma * ||w_l||
        moved = seen["perturbed"][name] - w
        if name.endswith("weight"):
            assert moved.norm().item() == pytest.approx(0.01 * w.norm().item(), rel=1e-4)
        else:
            assert torch.equal(moved, torch.zeros_like(w))

    model.zero_grad()
    F.cross_entropy(model(x_adv), y).backward()  # plain PGD-AT's gradient on the same x_adv
    plain = [p.grad for p in model.parameters()]
    assert not all(torch.allclose(a, b) for a, b in zip(seen["grads"], plain, strict=True))


def test_awp_restores_weights_when_the_step_fails(batch):
    model, x, x_adv, y = batch
    before = weights(model)

    def diverging(loss, before_update=None):
        raise TrainingDiverged("loss is nan")

    with pytest.raises(TrainingDiverged):
        defense("awp", FixedAttack(x_adv), inner="trades").train_batch(model, x, y, diverging)
    assert all(torch.equal(before[k], v) for k, v in weights(model).items())


def test_awp_update_differs_from_pgd_at_in_the_engine(tmp_path):
    plain = trainer(tmp_path / "a", recipe("pgd-at", epochs=1))
    awp = trainer(tmp_path / "b", recipe("awp", epochs=1))
    assert all(torch.equal(a, b) for a, b in zip(weights(plain.model).values(),
                                                  weights(awp.model).values(), strict=True))
    plain.run_epoch()
    awp.run_epoch()
    assert not all(torch.allclose(a, b) for a, b in zip(weights(plain.model).values(),
                                                         weights(awp.model).values(), strict=True))


def test_awp_warm_up_epochs_train_like_the_inner_method(tmp_path):
    """rcm's TRADES-AWP: the first warmup_epochs are plain TRADES, then the weights are
    perturbed (epochs counted from 0, as the trainer's on_epoch_start hook gives them)."""
    plain = trainer(tmp_path / "a", recipe("trades", TPGD, epochs=2))
    awp = trainer(tmp_path / "b", recipe(
        "awp", TPGD, epochs=2,
        extra=', defense_params = { inner = "trades", warmup_epochs = 1 }'))

    def same() -> bool:
        return all(torch.equal(a, b) for a, b in zip(weights(plain.model).values(),
                                                      weights(awp.model).values(), strict=True))

    for epoch, expected in ((0, True), (1, False)):
        awp.defense.on_epoch_start(awp.model, epoch)
        for t in (plain, awp):
            torch.manual_seed(epoch)  # the same random starts for both trainers' attacks
            t.run_epoch()
        assert same() is expected, epoch


# --- Fast-AT --------------------------------------------------------------------------------------


def epochs_of(defense_obj, values, key="val_robust"):
    with collect_flags() as flags:
        for epoch, value in enumerate(values, start=1):
            defense_obj.on_epoch_end(None, {"epoch": epoch, "train_robust": 0.9, key: value})
    return flags


def test_fast_at_flags_a_collapse_of_pgd_accuracy():
    flags = epochs_of(defense("fast-at", FixedAttack(None)), [0.30, 0.42, 0.47, 0.05, 0.02])
    assert set(flags) == {"catastrophic-overfitting"}
    assert "epoch 4" in flags["catastrophic-overfitting"]
    assert "47.0%" in flags["catastrophic-overfitting"]


def test_fast_at_stays_quiet_on_a_healthy_run():
    healthy = [0.20, 0.31, 0.38, 0.36, 0.41, 0.45, 0.44]  # noise below the 0.2 drop
    assert epochs_of(defense("fast-at", FixedAttack(None)), healthy) == {}


def test_fast_at_floor_and_train_probe():
    values = [0.15, 0.22, 0.08]  # a drop of 0.14 only: caught by the floor
    assert epochs_of(defense("fast-at", FixedAttack(None)), values, "train_robust") == {}
    floored = defense("fast-at", FixedAttack(None), collapse_floor=0.1)
    with collect_flags() as flags:
        for epoch, value in enumerate(values, start=1):  # no validation split: train probe
            floored.on_epoch_end(None, {"epoch": epoch, "train_robust": value})
    assert "train_robust" in flags["catastrophic-overfitting"]


@pytest.mark.parametrize("name", ["fast-at", "free-at"])
def test_fast_and_free_at_are_linf_only(name):
    with pytest.raises(UserError, match="linf only"):
        defense(name, FixedAttack(None, ThreatModel(norm="l2", eps=0.5)))


# --- Free-AT --------------------------------------------------------------------------------------


def test_free_at_takes_m_optimizer_steps_per_batch(tmp_path):
    t = trainer(tmp_path, recipe("free-at", 'attack = { name = "fgsm", eps = 0.1 }', epochs=1,
                                 extra=", defense_params = { replays = 3 }"))
    steps = []
    t.optimizer.register_step_post_hook(lambda *args: steps.append(1))
    t.run_epoch()
    assert t.steps_per_batch == 3
    assert len(steps) == 6 * 3  # 192 examples in batches of 32, 3 replays each
    assert t.schedule.last_epoch == 18  # the lr schedule counts optimizer steps


def test_free_at_perturbation_persists_within_eps_and_resizes(batch):
    model, x, _, y = batch
    free = defense("free-at", FixedAttack(None), replays=2)
    inputs = []
    original_forward = model.forward

    def recording_forward(inp):
        inputs.append(inp.detach().clone())
        return original_forward(inp)

    model.forward = recording_forward

    def step(loss, before_update=None):
        loss.backward()

    free.train_batch(model, x, y, step)
    assert torch.equal(inputs[0], x)  # delta starts at 0
    delta = free.delta.clone()
    assert 0 < delta.abs().max() <= LINF.eps + 1e-7
    assert not torch.equal(inputs[1], x)  # the second replay already uses the updated delta
    free.train_batch(model, x[:3], y[:3], step)  # a smaller batch reuses the first rows
    assert torch.equal(inputs[2], (x[:3] + delta[:3]).clamp(0, 1))
    assert torch.equal(free.delta[3:], delta[3:])
    bigger = torch.cat([x, x[:4]])
    free.train_batch(model, bigger, torch.cat([y, y[:4]]), step)
    assert free.delta.shape == bigger.shape
    assert torch.equal(inputs[4][8:], bigger[8:])  # new rows start unperturbed
    assert all(i.min() >= 0 and i.max() <= 1 for i in inputs)
    assert all((i - xs).abs().max() <= LINF.eps + 1e-6
               for i, xs in zip(inputs, [x, x, x[:3], x[:3], bigger, bigger], strict=True))


# --- recipe presets -------------------------------------------------------------------------------

PRESETS = [
    "standard-digits", "pgd-at-linf-0.1-digits", "standard-cifar", "pgd-at-linf-8",
    "ingredients-pgd-at", "ingredients-trades", "ingredients-mart",
    "bag-of-tricks-pgd-at", "bag-of-tricks-trades", "bag-of-tricks-alp", "rice-pgd-at",
    "generalization-pgd-at", "fast-at-linf-8", "free-at-linf-8", "awp-pgd-at-linf-8",
    "awp-trades-linf-8", "pgd-at-l2-0.5", "pgd-at-l1-12",
    "trades-digits", "mart-digits", "alp-digits", "fast-at-digits", "free-at-digits",
    "awp-digits", "awp-trades-digits", "rice-pgd-at-digits", "generalization-pgd-at-digits",
    "pgd-at-l2-1.0-digits", "pgd-at-l1-4-digits",
]


def test_every_recipe_preset_loads():
    # a built-in preset that fails to resolve is dropped silently: name each one here
    assert set(PRESETS) <= set(COMPONENTS.catalogue.names("recipes"))


@pytest.mark.parametrize("dataset", ["digits", "cifar10"])
def test_validate_accepts_a_suite_using_every_preset(run_cli, tmp_path, dataset):
    suite = tmp_path / "suite.toml"
    names = ", ".join(f'"{name}"' for name in PRESETS)
    suite.write_text(f'datasets = ["{dataset}"]\narchitectures = ["small-cnn"]\n'
                     f'recipes = [{names}]\nattacks = ["fgsm-linf-0.1"]\n')
    result = run_cli("validate", suite)
    assert result.exit_code == 0, result.output
    assert f"{len(PRESETS)} train cells" in result.stdout
