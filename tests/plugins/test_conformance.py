"""Conformance over every registered attack and architecture (timm style).

Each plugin entry declares ``test_params`` that make it cheap; these tests then check the
contracts the engine relies on, on tiny models and inputs.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harness import DataInfo, ThreatModel
from harness.guard import GuardedAttack
from harness.nn import normalized
from harness.seeding import seed_everything
from harness.session import load_components

COMPONENTS = load_components(autoload=False)
TEST_EPS = {"linf": 0.1, "l2": 1.0, "l1": 6.0, "l0": 6.0}
ATTACK_CASES = [(entry.name, norm) for entry in COMPONENTS.attacks for norm in entry.norms]


@pytest.fixture(scope="module")
def tiny_model_and_data():
    """A small CNN fitted to separable 3×8×8 data, so attacks have something to break."""
    seed_everything(0)
    protos = torch.rand(4, 3, 8, 8)
    y = torch.arange(16) % 4
    x = (protos[y] + 0.1 * torch.randn(16, 3, 8, 8)).clamp(0, 1)
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                             nn.Linear(8 * 64, 4))
    model = normalized(backbone, DataInfo((3, 8, 8), 4, (0.5,) * 3, (0.25,) * 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    model.eval()
    correct = model(x).argmax(1) == y
    assert correct.float().mean() > 0.9
    return model, x[correct][:8], y[correct][:8]


@pytest.mark.parametrize(("name", "norm"), ATTACK_CASES, ids=[f"{n}-{m}" for n, m in ATTACK_CASES])
def test_attack_conformance(name, norm, tiny_model_and_data):
    model, x, y = tiny_model_and_data
    entry = COMPONENTS.attacks.get(name)
    threat = ThreatModel(norm=norm, eps=TEST_EPS[norm])
    attack = entry.factory(entry.make_params(entry.test_params), threat)
    if hasattr(attack, "input_problem"):  # validation must accept what the attack can run on
        assert attack.input_problem(tuple(x.shape[1:]), 4) is None
    guarded = GuardedAttack(attack, threat, entry.minimum_norm)
    model.train()  # the guard must attack in eval mode and give the model back in train mode
    seed_everything(0)
    first, norms = guarded.run(model, x, y)  # raises ContractViolation if the budget is broken
    assert model.training
    model.eval()
    seed_everything(0)
    second, _ = guarded.run(model, x, y)
    assert first.shape == x.shape and first.dtype == x.dtype
    assert norms.shape == (len(x),)
    assert torch.equal(first, second), "not deterministic under a fixed seed"
    assert all(p.grad is None for p in model.parameters()), "parameter gradients leaked"


ARCH_NAMES = [entry.name for entry in COMPONENTS.architectures]


@pytest.mark.parametrize("name", ARCH_NAMES)
def test_architecture_conformance(name):
    entry = COMPONENTS.architectures.get(name)
    shape = entry.test_input_shape
    info = DataInfo(shape, 10, (0.5,) * shape[0], (0.25,) * shape[0])

    def build() -> nn.Module:
        seed_everything(0)
        return entry.factory(entry.make_params(entry.test_params), info).eval()

    model = build()
    x = torch.rand(2, *shape, generator=torch.Generator().manual_seed(1), requires_grad=True)
    logits = model(x)
    assert logits.shape == (2, 10)
    logits.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0, "no gradient reaches the input"
    with torch.no_grad():
        assert torch.equal(build()(x), model(x)), "not deterministic under a fixed seed"
