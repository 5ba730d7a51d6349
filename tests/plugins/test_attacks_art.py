"""The ART plugin (plugins/art_attacks/) against ART called directly, and against torchattacks.

A small CNN is fitted to real 8×8 digits once per module; attacks run with few iterations so
the whole file stays cheap on a 2-core CPU. Measured figures (PGD agreement with torchattacks,
plugin/ART time ratio) are printed; run with ``-s`` to see them.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
import torch
from torch import nn

from harness import DataInfo, ThreatModel
from harness.guard import GuardedAttack
from harness.nn import normalized
from harness.seeding import seed_everything
from harness.session import load_components
from harness.threat import perturbation_norms


@pytest.fixture(scope="module")
def components():
    return load_components(autoload=False)


@pytest.fixture(scope="module")
def plugin(components):
    """The loaded plugin package (plugins are loaded by path under a private module name)."""
    return components.pm.get_plugin("art_attacks")


def build(components, name: str, norm: str, eps: float, **params):
    """(guarded attack, raw attack) of a registered entry at this threat model."""
    entry = components.attacks.get(name)
    threat = ThreatModel(norm=norm, eps=eps)
    raw = entry.factory(entry.make_params(params), threat)
    return GuardedAttack(raw, threat, entry.minimum_norm), raw


def small_cnn(channels: int = 1, side: int = 8) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8 * side * side, 10))


@pytest.fixture(scope="module")
def digits(fit_on_digits):
    """(model, x, y): a small CNN (normalization inside) trained briefly on digits; 96 clean-
    correct test examples."""
    seed_everything(0)
    model = normalized(small_cnn(), DataInfo((1, 8, 8), 10, (0.3,), (0.4,)))
    return fit_on_digits(model, epochs=3, keep=96, min_accuracy=0.85)


def art_pgd(model: nn.Module, input_shape: tuple[int, ...], norm, eps: float, step: float,
            steps: int, inits: int = 0):
    """ProjectedGradientDescentPyTorch as its documentation shows, on a PyTorchClassifier."""
    from art.attacks.evasion import ProjectedGradientDescentPyTorch
    from art.estimators.classification import PyTorchClassifier

    classifier = PyTorchClassifier(model=model, loss=nn.CrossEntropyLoss(),
                                   input_shape=input_shape, nb_classes=10,
                                   clip_values=(0.0, 1.0), preprocessing=(0.0, 1.0),
                                   device_type="cpu")
    return ProjectedGradientDescentPyTorch(classifier, norm=norm, eps=eps, eps_step=step,
                                           max_iter=steps, num_random_init=inits,
                                           batch_size=128, verbose=False)


def art_pgd_direct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, norm, eps: float,
                   step: float, steps: int, inits: int = 0) -> np.ndarray:
    """ART called directly on the same model and data (numpy in, numpy out)."""
    attack = art_pgd(model, tuple(x.shape[1:]), norm, eps, step, steps, inits)
    return attack.generate(x.numpy(), y=y.numpy())


# --- PGD against ART directly and against torchattacks ------------------------------------------


def test_pgd_linf_without_random_start_equals_art_called_directly(components, digits):
    model, x, y = digits
    guarded, _ = build(components, "pgd-art", "linf", 0.1, steps=10, step_size="eps/4",
                       random_start=False)
    seed_everything(0)
    ours = guarded(model, x, y)
    direct = torch.from_numpy(art_pgd_direct(model, x, y, np.inf, 0.1, 0.025, 10))
    assert torch.equal(ours, direct)
    assert (model(ours).argmax(1) != y).any(), "the comparison is vacuous: nothing was fooled"


def test_pgd_linf_agrees_with_torchattacks_pgd(components, digits):
    model, x, y = digits
    ours, _ = build(components, "pgd-art", "linf", 0.1, steps=10, step_size="eps/4",
                    random_start=False)
    theirs, _ = build(components, "pgd", "linf", 0.1, steps=10, step_size="eps/4",
                      random_start=False)
    seed_everything(0)
    adv_art, adv_ta = ours(model, x, y), theirs(model, x, y)
    with torch.no_grad():
        fooled_art = model(adv_art).argmax(1) != y
        fooled_ta = model(adv_ta).argmax(1) != y
    disagree = (fooled_art != fooled_ta).sum().item()
    gap = 100 * (fooled_art.float().mean() - fooled_ta.float().mean()).item()
    print(f"\nPGD-10 linf 0.1 on {len(x)} digits: ART fooled {fooled_art.float().mean():.1%}, "
          f"torchattacks {fooled_ta.float().mean():.1%}; gap {gap:+.1f} pp, {disagree} example(s) "
          f"disagree ({100 * disagree / len(x):.1f} pp); max |x_art - x_ta| "
          f"{(adv_art - adv_ta).abs().max():.2e}")
    assert 0.1 < fooled_ta.float().mean() < 1.0, "the comparison is vacuous"
    assert disagree <= max(2, len(x) // 50)


# --- threat models --------------------------------------------------------------------------------


@pytest.mark.parametrize("eps", [40.0, 12.0])
def test_l1_pgd_respects_its_budget_on_cifar_sized_inputs(components, eps):
    """The study's PGD-L1 settings (20 steps of 1.5*eps/20, one random init) on 3×32×32."""
    seed_everything(0)
    model = normalized(small_cnn(3, 32), DataInfo((3, 32, 32), 10, (0.5,) * 3, (0.25,) * 3)).eval()
    x = torch.rand(16, 3, 32, 32)
    y = model(x).argmax(1).detach()
    guarded, _ = build(components, "pgd-art", "l1", eps, steps=20, step_size="0.075*eps",
                       random_start=True, num_random_init=1)
    _, norms = guarded.run(model, x, y)  # raises ContractViolation past eps
    assert (norms <= eps * (1 + 1e-6)).all()
    assert (norms > 0).all()
    assert float(norms.max()) > 0.5 * eps, "the random start should use much of the ball"


@pytest.mark.parametrize(("name", "norm", "eps"), [
    ("fgsm-art", "l2", 1.0), ("mim-art", "l2", 1.0), ("apgd-art", "l1", 5.0),
    ("square-art", "linf", 0.1), ("bim-art", "linf", 0.1)])
def test_bounded_attacks_stay_in_the_ball(components, digits, name, norm, eps):
    model, x, y = digits
    params = {"steps": 3} if name in ("mim-art", "apgd-art") else {}
    params |= {"queries": 30} if name == "square-art" else {}
    guarded, _ = build(components, name, norm, eps, **params)
    seed_everything(0)
    _, norms = guarded.run(model, x[:32], y[:32])  # raises ContractViolation past eps
    assert (norms > 0).any()


def test_zero_budget_returns_the_input(components, digits):
    model, x, y = digits
    guarded, _ = build(components, "pgd-art", "linf", 0.0, steps=2)
    assert torch.equal(guarded(model, x, y), x)


# --- the wrapper ----------------------------------------------------------------------------------


def test_model_modes_are_left_to_the_engine(components, digits):
    """Raw ART leaves a model in eval; the plugin never touches modes, the guard restores them."""
    model, x, y = digits
    guarded, raw = build(components, "pgd-art", "linf", 0.1, steps=2)
    seen: list[bool] = []
    handle = model.register_forward_hook(lambda module, *_: seen.append(module.training))
    try:
        model.train()
        art_pgd_direct(model, x[:8], y[:8], np.inf, 0.1, 0.05, 2)
        assert not model.training, "ART's own quirk: it leaves the model in eval mode"

        model.train()
        seen.clear()
        guarded(model, x[:8], y[:8])
        assert model.training, "the guard gives the model back in train mode"
        assert seen and not any(seen), "the guard attacks in eval mode"

        model.train()
        seen.clear()
        raw(model, x[:8], y[:8])  # without the guard, the caller's mode stays in force
        assert model.training and seen and all(seen)
    finally:
        handle.remove()
        model.eval()


def test_sequential_model_runs_its_forward_and_hooks(components):
    """ART runs an nn.Sequential's children one by one; through the plugin its forward runs."""
    seed_everything(0)
    model = small_cnn().eval()
    x, calls = torch.rand(8, 1, 8, 8), []
    y = model(x).argmax(1).detach()
    handle = model.register_forward_hook(lambda *_: calls.append(1))
    try:
        calls.clear()
        art_pgd_direct(model, x, y, np.inf, 0.1, 0.05, 2)
        assert not calls, "ART's own quirk: container hooks never fire"
        guarded, _ = build(components, "pgd-art", "linf", 0.1, steps=2)
        guarded(model, x, y)
        assert calls
    finally:
        handle.remove()


def test_classifier_built_once_per_model(components, plugin, monkeypatch):
    import art.estimators.classification as art_classification

    built: list[int] = []

    class Counting(art_classification.PyTorchClassifier):
        def __init__(self, *args, **kwargs):
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(art_classification, "PyTorchClassifier", Counting)
    seed_everything(0)
    model, other = small_cnn().eval(), small_cnn().eval()
    x = torch.rand(12, 1, 8, 8)
    y = model(x).argmax(1).detach()
    pgd, _ = build(components, "pgd-art", "linf", 0.1, steps=2)
    fgsm, _ = build(components, "fgsm-art", "linf", 0.1)
    for batch in (slice(0, 4), slice(4, 8), slice(8, 12)):  # the engine calls once per batch
        pgd(model, x[batch], y[batch])
        fgsm(model, x[batch], y[batch])
    assert len(built) == 1, "one classifier per model, shared by every attack"
    pgd(other, x, y)
    assert len(built) == 2
    # a softmax view is a second classifier (SimBA/NewtonFool need probabilities)
    simba, _ = build(components, "simba-art", "l2", 1.0, steps=4)
    simba(model, x[:2], y[:2])
    simba(model, x[2:4], y[2:4])
    assert len(built) == 3


def test_cache_does_not_keep_models_alive(components, plugin):
    seed_everything(0)
    model = small_cnn().eval()
    x = torch.rand(4, 1, 8, 8)
    guarded, _ = build(components, "pgd-art", "linf", 0.1, steps=1)
    guarded(model, x, model(x).argmax(1).detach())
    assert model in plugin.view._CLASSIFIERS
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None


def test_float64_inputs_and_models(components):
    """ART is float32 (float64 crashes its PGD); the plugin converts both ways."""
    seed_everything(0)
    model = small_cnn().double().eval()
    x = torch.rand(8, 1, 8, 8, dtype=torch.float64)
    y = model(x).argmax(1).detach()
    guarded, _ = build(components, "pgd-art", "linf", 0.1, steps=3)
    x_adv = guarded(model, x, y)
    assert x_adv.dtype == torch.float64
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6


def test_targeted_pgd_reaches_its_targets(components, digits):
    model, x, y = digits
    guarded, _ = build(components, "pgd-art", "linf", 0.3, steps=20, step_size="eps/8",
                       targeted="next")
    seed_everything(0)
    with torch.no_grad():
        reached = model(guarded(model, x[:32], y[:32])).argmax(1) == (y[:32] + 1) % 10
    assert reached.float().mean() > 0.5


def test_seed_parameter_reseeds_and_restores_global_streams(components, digits):
    model, x, y = digits
    guarded, _ = build(components, "pgd-art", "linf", 0.1, steps=2, seed=7)
    np.random.seed(1)
    first = guarded(model, x[:16], y[:16])
    after = np.random.get_state()[1].copy()
    np.random.seed(2)
    second = guarded(model, x[:16], y[:16])
    assert torch.equal(first, second), "an explicit seed fixes the random start"
    np.random.seed(1)
    assert np.array_equal(np.random.get_state()[1], after), "the global stream is restored"


# --- decision-based attacks -----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "norm", "params"), [
    ("hopskipjump-art", "l2", {"steps": 3, "max_eval": 40, "init_eval": 10, "init_size": 20}),
    ("hopskipjump-art", "linf", {"steps": 3, "max_eval": 40, "init_eval": 10, "init_size": 20}),
    ("boundary-art", "l2", {"steps": 20, "num_trial": 5, "sample_size": 5, "init_size": 20}),
])
def test_decision_based_attack_on_a_tiny_budget(components, digits, name, norm, params):
    model, x, y = digits
    x, y = x[:8], y[:8]
    guarded, _ = build(components, name, norm, 1.0, **params)
    seed_everything(0)
    first, norms = guarded.run(model, x, y)  # minimum-norm: checked finite and in [0,1]
    seed_everything(0)
    second, _ = guarded.run(model, x, y)
    assert torch.equal(first, second), "ART's unseeded RandomState start was not replaced"
    with torch.no_grad():
        fooled = model(first).argmax(1) != y
    assert fooled.float().mean() >= 0.75, "every found start is adversarial"
    # the random starting points sit ~half the input range away; the attack must have moved in
    start_distance = perturbation_norms(x, torch.rand_like(x), norm).median()
    assert norms[fooled].median() < start_distance


# --- presets --------------------------------------------------------------------------------------


def test_study_preset_matches_the_protocol(components):
    """pgd20-l1-40-art: ART PGD, norm 1, eps 40, 20 iterations, step 1.5*eps/20, 1 random init."""
    spec = components.catalogue.get("attacks", "pgd20-l1-40-art").spec
    entry = components.attacks.get(spec.factory)
    params = entry.make_params(spec.params)
    assert (spec.factory, spec.norm, spec.eps) == ("pgd-art", "l1", 40.0)
    assert params.steps == 20 and params.random_inits() == 1
    assert params.alpha(spec.eps) == pytest.approx(1.5 * 40 / 20)


def test_square_l2_on_tiny_inputs_is_flagged(components, digits):
    """ART's l2 Square initialisation needs inputs of 10+ pixels; on 8×8 it is skipped."""
    from harness.flags import collect_flags

    model, x, y = digits
    guarded, _ = build(components, "square-art", "l2", 1.0, queries=20)
    seed_everything(0)
    with collect_flags() as flags:
        guarded.run(model, x[:16], y[:16])  # raises ContractViolation past eps
    assert "art-square-l2-no-init" in flags
