"""The helpers toolkit-wrapping attack plugins share (``harness.toolkits``)."""

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from harness import threat
from harness.flags import collect_flags
from harness.toolkits import (
    ABS_TOL,
    NORM_ORDER,
    REL_TOL,
    IterativeParams,
    TargetedParams,
    count_classes,
    finite_in_range,
    frozen_parameters,
    model_device,
    model_dtype,
    next_classes,
    preserved_rng,
    select_targets,
    within_budget,
)


def batchnorm_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout(0.5), nn.Flatten(),
                         nn.Linear(2 * 36, 7)).double()


def test_count_classes_is_a_side_forward_that_changes_nothing():
    model = batchnorm_model().train()
    model[2].eval()  # a module already in eval must stay in eval
    stats = model[1].running_mean.clone()
    x = torch.rand(5, 1, 8, 8)  # float32 input for a float64 model: cast to the model's dtype
    assert count_classes(model, x) == 7
    assert torch.equal(model[1].running_mean, stats), "BatchNorm statistics moved"
    assert [m.training for m in model] == [True, True, False, True, True]


def test_device_and_dtype_of_a_stateless_model_fall_back():
    assert model_device(nn.ReLU(), torch.device("meta")) == torch.device("meta")
    assert model_dtype(nn.ReLU(), torch.float16) == torch.float16
    assert model_dtype(batchnorm_model(), torch.float16) == torch.float64


@pytest.mark.parametrize("device", [None, "cpu", torch.device("cpu")])
def test_preserved_rng_keeps_the_callers_stream(device):
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    with preserved_rng(device):
        torch.manual_seed(99)  # what toolkits do inside
        torch.rand(10)
    assert torch.equal(torch.rand(3), expected)


def test_frozen_parameters_writes_no_parameter_gradient_and_restores_requires_grad():
    model = batchnorm_model().float()
    model[0].bias.requires_grad_(False)
    x = torch.rand(2, 1, 8, 8, requires_grad=True)
    with frozen_parameters(model):
        model(x).sum().backward()
    assert x.grad is not None
    assert all(p.grad is None for p in model.parameters())
    assert [p.requires_grad for p in model.parameters()] == [True, False, True, True, True, True]


def test_finite_in_range_returns_broken_examples_unperturbed_with_a_flag():
    x = torch.full((3, 1, 2, 2), 0.5)
    x_adv = torch.tensor([0.6, float("nan"), 1.2]).view(3, 1, 1, 1).expand(3, 1, 2, 2).double()
    with collect_flags() as flags:
        out = finite_in_range(x, x_adv, "my-attack")
    assert out.dtype == x.dtype
    assert torch.equal(out[:, 0, 0, 0], torch.tensor([0.6, 0.5, 1.0], dtype=torch.float32))
    assert list(flags) == ["non-finite-output"]
    assert flags["non-finite-output"].startswith("my-attack: 1 example(s) came back NaN/inf")


def test_preserved_rng_keeps_python_and_numpy_streams_too():
    import random

    import numpy as np

    random.seed(2)
    np.random.seed(2)
    expected = (random.random(), np.random.rand())
    random.seed(2)
    np.random.seed(2)
    with preserved_rng():
        random.seed(5)
        np.random.seed(5)  # what ART's decision-based starts do
    assert (random.random(), np.random.rand()) == expected


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_streams_are_kept_and_restored_from_a_checkpoint_mapped_to_the_gpu(tmp_path):
    from harness.seeding import rng_state, set_rng_state

    cuda = torch.device("cuda")
    state = rng_state(cuda)
    expected = torch.rand(3, device=cuda)
    set_rng_state(state, cuda)
    with preserved_rng(cuda):
        torch.rand(10, device=cuda)
    assert torch.equal(torch.rand(3, device=cuda), expected)
    torch.save(state, tmp_path / "state.pt")  # the trainer loads with map_location=its device
    set_rng_state(torch.load(tmp_path / "state.pt", map_location=cuda, weights_only=False), cuda)
    assert torch.equal(torch.rand(3, device=cuda), expected)


@pytest.mark.parametrize("kind", ["autoaugment", "autoaugment-imagenet"])
def test_autoaugment_is_seeded_by_the_training_generator_and_leaves_global_streams(kind):
    from harness.augment import augment

    x = torch.rand(6, 3, 16, 16)
    torch.manual_seed(7)
    expected_next = torch.rand(2)
    torch.manual_seed(7)
    first = augment(x, kind, 2, torch.Generator().manual_seed(1))
    assert torch.equal(torch.rand(2), expected_next), "the global stream moved"
    again = augment(x, kind, 2, torch.Generator().manual_seed(1))
    assert torch.equal(first, again) and first.shape == x.shape
    assert float(first.min()) >= 0 and float(first.max()) <= 1 and not torch.equal(first, x)


def test_target_modes():
    torch.manual_seed(0)
    model = nn.Linear(4, 5)
    x, y = torch.rand(64, 4), torch.arange(64) % 5
    assert torch.equal(select_targets(model, x, y, "next", 5), (y + 1) % 5)
    assert torch.equal(next_classes(y, 5), (y + 1) % 5)
    with torch.no_grad():
        assert torch.equal(select_targets(model, x, y, "least-likely", 5), model(x).argmin(1))
    torch.manual_seed(3)
    random_targets = select_targets(model, x, y, "random", 5)
    assert bool((random_targets != y).all()) and random_targets.max() < 5
    assert len(set(random_targets.tolist())) == 5, "every class is drawn"
    torch.manual_seed(3)
    assert torch.equal(select_targets(model, x, y, "random", 5), random_targets), "seeded stream"


def test_shared_parameter_groups():
    assert IterativeParams(steps=4).alpha(0.1) == pytest.approx(2.5 * 0.1 / 4)
    assert IterativeParams(step_size="eps/4").alpha(0.2) == pytest.approx(0.05)
    assert IterativeParams(step_size="2/255").alpha(0.2) == pytest.approx(2 / 255)
    assert TargetedParams().targeted == "none"
    with pytest.raises(ValidationError):
        TargetedParams(targeted="far")
    with pytest.raises(ValidationError):  # a misspelled key is an error, not ignored
        IterativeParams(step=3)


def test_budget_tolerance_is_the_engines():
    assert (REL_TOL, ABS_TOL, NORM_ORDER) == (threat.REL_TOL, threat.ABS_TOL, threat.NORM_ORDER)
    eps = 40.0
    norms = torch.tensor([eps, eps * (1 + REL_TOL) + ABS_TOL, eps * (1 + 2 * REL_TOL)],
                         dtype=torch.float64)
    assert within_budget(norms, eps).tolist() == [True, True, False]
