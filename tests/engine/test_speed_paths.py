"""The speed paths, exercised on CPU: cells planned for CUDA (bf16 autocast, channels_last) run
here as they would there; their hashes change while CPU cells keep theirs; evaluation crafts
in bf16, judges in fp32 and checks itself against fp32; datasets held on the device give the
batches a DataLoader would."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from harness.data import to_device, train_batches
from harness.evaluate import run_attack
from harness.flags import collect_flags
from harness.guard import GuardedAttack
from harness.plan import build_plan
from harness.runner import Runner
from harness.session import load_components
from harness.specs import Fp32Check, Speed
from harness.store import Store
from harness.suite import load_suite
from harness.threat import ThreatModel
from harness.train import Trainer, split_validation

COMPONENTS = load_components(autoload=False)

TRAIN_ATTACK = 'attack = { name = "pgd", eps = 0.1, params = { steps = 1 } }'
SUITE = """
datasets = [{ name = "synthetic", params = { train_size = 64, test_size = 16, channels = 2 } }]
architectures = [{ name = "small-cnn", params = { channels = 4, hidden = 8 } }]
recipes = [{ name = "at", defense = "pgd-at", epochs = 1, batch_size = 32, %s %s }]
attacks = [{ name = "fgsm", eps = 0.1 }]
%s
"""


def plan_for(tmp_path, device_type: str, recipe: str = "", evaluation: str = ""):
    path = tmp_path / f"{device_type}.toml"
    path.write_text(SUITE % (recipe, TRAIN_ATTACK, evaluation))
    return build_plan(COMPONENTS, load_suite(path), device_type)


def hashes(plan) -> list[str]:
    return [c.hash for c in plan.train_cells] + [e.hash for e in plan.eval_cells]


def test_cuda_cells_run_bf16_channels_last_and_hash_apart_from_cpu_cells(tmp_path):
    cpu, cuda = plan_for(tmp_path, "cpu"), plan_for(tmp_path, "cuda")
    assert cpu.train_cells[0].recipe.speed == cpu.eval_cells[0].speed == Speed()
    assert cpu.eval_cells[0].fp32_check is None
    assert cuda.train_cells[0].recipe.speed == Speed(amp=True, channels_last=True)
    assert cuda.eval_cells[0].speed == Speed(amp=True, channels_last=True)
    assert cuda.eval_cells[0].fp32_check == Fp32Check(256, 0.03)
    assert not set(hashes(cpu)) & set(hashes(cuda))


def test_turning_the_cuda_settings_off_gives_the_cpu_cells(tmp_path):
    off = plan_for(tmp_path, "cuda", "amp = false, channels_last = false,",
                   "[evaluation]\namp = false\nchannels_last = false")
    assert hashes(off) == hashes(plan_for(tmp_path, "cpu"))


def test_amp_and_channels_last_set_explicitly_apply_on_cpu_too(tmp_path):
    """Unset they follow the device; set, they are what runs (a CPU with native bf16 gains)."""
    opted_in = plan_for(tmp_path, "cpu", "amp = true, channels_last = true,",
                        "[evaluation]\namp = true\nchannels_last = true")
    assert opted_in.train_cells[0].recipe.speed == Speed(amp=True, channels_last=True)
    assert opted_in.eval_cells[0].speed == Speed(amp=True, channels_last=True)
    assert opted_in.eval_cells[0].fp32_check == Fp32Check(256, 0.03)
    assert hashes(opted_in) == hashes(plan_for(tmp_path, "cuda"))


def test_compile_is_hashed_on_every_device(tmp_path):
    plain = plan_for(tmp_path, "cpu")
    compiled = plan_for(tmp_path, "cpu", "compile = true,", "[evaluation]\ncompile = true")
    assert compiled.train_cells[0].recipe.speed == Speed(compile=True)
    assert compiled.eval_cells[0].speed == Speed(compile=True)
    assert not set(hashes(plain)) & set(hashes(compiled))


class RecordingLoss:
    """A defense wrapper that notes whether each training step ran under autocast."""

    def __init__(self, defense) -> None:
        self.defense, self.autocast = defense, []

    def loss(self, model, x, y):
        self.autocast.append((torch.is_autocast_enabled("cpu"),
                              x.is_contiguous(memory_format=torch.channels_last)))
        return self.defense.loss(model, x, y)


def test_a_cell_planned_for_cuda_trains_in_bf16_and_channels_last_here(tmp_path):
    plan = plan_for(tmp_path, "cuda")
    cell = plan.train_cells[0]
    data = Runner(COMPONENTS, Store(tmp_path / "out"), torch.device("cpu"),
                  tmp_path).dataset(cell.dataset, plan)
    trainer = Trainer(COMPONENTS, cell, data, torch.device("cpu"))
    trainer.defense = RecordingLoss(trainer.defense)
    result = trainer.run()
    assert trainer.defense.autocast == [(True, True), (True, True)]
    conv = next(m for m in trainer.model.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert {"bf16_train_clean", "bf16_train_robust"} <= set(result.summary)  # the cross-check
    assert all(p.dtype == torch.float32 for p in result.model.parameters())


class MeanSign(nn.Module):
    """Class 0 when the mean pixel is above 1/2, else class 1; notes autocast at each forward."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(100.0))
        self.autocast: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.autocast.append(torch.is_autocast_enabled("cpu"))
        score = self.scale * (x.flatten(1).mean(1) - 0.5)
        return torch.stack([score, -score], dim=1)


def darken(calls: list, fooled_under_bf16: bool = True):
    """An attack that moves every pixel down by eps (which flips MeanSign), except under bf16
    autocast when ``fooled_under_bf16`` is false: a bf16 attack weaker than its fp32 self."""

    def attack(model, x, y):
        calls.append((len(x), torch.is_autocast_enabled("cpu"),
                      x.is_contiguous(memory_format=torch.channels_last)))
        model(x)
        if torch.is_autocast_enabled("cpu") and not fooled_under_bf16:
            return x.clone()
        return (x - 0.1).clamp(0, 1)

    return attack


def evaluate(attack, speed: Speed, check: Fp32Check | None = None):
    model = MeanSign()
    x, y = torch.full((12, 2, 4, 4), 0.55), torch.zeros(12, dtype=torch.long)
    guarded = GuardedAttack(attack, ThreatModel(norm="linf", eps=0.1))
    with collect_flags() as flags:
        outcome = run_attack(model, guarded, x, y, torch.ones(12, dtype=torch.bool), 8, 0,
                             speed, check)
    return model, outcome, flags


def test_attacks_are_crafted_in_bf16_and_judged_in_fp32():
    calls: list = []
    model, outcome, flags = evaluate(darken(calls), Speed(amp=True, channels_last=True),
                                     Fp32Check(5, 0.0))
    assert not outcome.robust.any() and flags == {}  # bf16 and fp32 agree: no flag
    # two bf16 batches (8 + 4), then the fp32 re-run on the first 5 attacked examples
    assert calls == [(8, True, True), (4, True, True), (5, False, True)]
    # each batch: the attack's forward (bf16 for the crafting ones), then the fp32 verdict
    assert model.autocast == [True, False, True, False, False, False]


def test_a_bf16_attack_weaker_than_fp32_is_flagged():
    _, outcome, flags = evaluate(darken([], fooled_under_bf16=False), Speed(amp=True),
                                 Fp32Check(4, 0.03))
    assert outcome.robust.all()  # the bf16 numbers stand, qualified by the flag
    assert "robust accuracy on the first 4 attacked examples is 100.0% crafted in bf16 and " \
           "0.0% in fp32" in flags["bf16-mismatch"]


def test_without_amp_there_is_no_fp32_rerun():
    calls: list = []
    evaluate(darken(calls), Speed(), Fp32Check(5, 0.0))
    assert calls == [(8, False, False), (4, False, False)]


class ListDataset(Dataset):
    """A dataset that is not a TensorDataset (as torchvision's are)."""

    def __init__(self, n: int) -> None:
        self.x = torch.rand(n, 1, 4, 4)
        self.y = torch.arange(n) % 3

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i], int(self.y[i])


def test_datasets_that_fit_are_held_as_tensors_and_give_the_same_batches():
    streamed = ListDataset(50)
    held = to_device(streamed, torch.device("cpu"), max_bytes=50 * 16 * 4)
    assert isinstance(held, TensorDataset)
    assert to_device(streamed, torch.device("cpu"), max_bytes=50 * 16 * 4 - 1) is streamed

    def epochs(dataset):  # with draws in between, as augmentation makes
        generator = torch.Generator().manual_seed(3)
        batches = []
        for _ in range(3):
            for x, y in train_batches(dataset, 16, torch.device("cpu"), generator):
                batches.append((x, y, torch.rand(1, generator=generator)))
        return batches

    for (xa, ya, ra), (xb, yb, rb) in zip(epochs(streamed), epochs(held), strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb) and torch.equal(ra, rb)
    train, val = split_validation(held, 0.2)
    assert type(train) is type(val) is type(held)


def test_the_device_data_limit_is_configurable(monkeypatch):
    monkeypatch.setenv("HARNESS_DEVICE_DATA_BYTES", "10")
    streamed = ListDataset(8)
    assert to_device(streamed, torch.device("cpu")) is streamed
    monkeypatch.setenv("HARNESS_DEVICE_DATA_BYTES", "many")
    with pytest.raises(Exception, match="HARNESS_DEVICE_DATA_BYTES='many'"):
        to_device(streamed, torch.device("cpu"))


@pytest.fixture
def quick_compile(monkeypatch):
    """torch.compile with the aot_eager backend: dynamo and AOT autograd capture the model as
    for inductor, without its C++ code generation (a minute per graph on this CPU)."""
    real = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model: real(model, backend="aot_eager"))


def trained(tmp_path, recipe: str):
    plan = plan_for(tmp_path, "cpu", recipe)
    cell = plan.train_cells[0]
    data = Runner(COMPONENTS, Store(tmp_path / "out"), torch.device("cpu"),
                  tmp_path).dataset(cell.dataset, plan)
    trainer = Trainer(COMPONENTS, cell, data, torch.device("cpu"))
    return trainer, trainer.run()


def test_compiled_training_shares_the_model_and_matches_eager(tmp_path, quick_compile):
    compiled, result = trained(tmp_path, "compile = true,")
    assert compiled.net is not compiled.model
    assert [id(p) for p in compiled.net.parameters()] == [id(p) for p in
                                                          compiled.model.parameters()]
    assert result.summary["compile_seconds"] > 0
    _, eager = trained(tmp_path, "")
    assert "compile_seconds" not in eager.summary
    expected, got = eager.model.state_dict(), result.model.state_dict()
    assert expected.keys() == got.keys()  # checkpoints hold the plain module's names
    assert all(torch.allclose(expected[k].float(), got[k].float(), atol=1e-5) for k in expected)
    assert result.history[0]["loss"] == pytest.approx(eager.history[0]["loss"], abs=1e-5)


def test_compiled_evaluation_matches_eager(quick_compile):
    _, eager, _ = evaluate(darken([]), Speed())
    _, outcome, _ = evaluate(darken([]), Speed(compile=True))
    assert torch.equal(outcome.robust, eager.robust) and torch.equal(outcome.norms, eager.norms)
    assert outcome.compile_seconds > 0 and eager.compile_seconds == 0


def test_the_flat_snapshot_restores_channels_last_and_strided_tensors_bit_for_bit():
    from harness.errors import ContractViolation
    from harness.guard import Snapshot

    conv = nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last)
    linear = nn.Linear(3, 2)
    linear.weight.data = linear.weight.data.t().contiguous().t()  # a transposed (strided) view
    linear.bias.data[0] = float("nan")  # a NaN that stays NaN is no change
    watched = [*conv.named_parameters(), *(("linear." + n, p) for n, p in
                                           linear.named_parameters())]
    before = [p.detach().clone() for _, p in watched]
    Snapshot(watched).restore_changed()  # nothing changed: no error
    snapshot = Snapshot(watched)
    with torch.no_grad():
        conv.weight[0, 1, 2, 0] += 1
        linear.weight[1, 2] = -0.0 if linear.weight[1, 2] == 0 else 0.0
    with pytest.raises(ContractViolation, match=r"changed the model \(weight, linear.weight\)"):
        snapshot.restore_changed()
    for (_, p), saved in zip(watched, before, strict=True):
        assert torch.equal(p.view(torch.int32), saved.view(torch.int32))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_autoaugment_ahead_in_workers_trains_the_same_model(tmp_path, monkeypatch):
    """AutoAugment done by worker processes ahead of training (on CUDA by default) gives the
    batches, generator and global RNG states, and trained weights of the synchronous path."""
    suite = tmp_path / "autoaugment.toml"
    suite.write_text(SUITE.replace("channels = 2", "channels = 3") % (
        'augment = "autoaugment", crop_padding = 2,', TRAIN_ATTACK, ""))
    plan = build_plan(COMPONENTS, load_suite(suite))
    cell = plan.train_cells[0]
    data = Runner(COMPONENTS, Store(tmp_path / "out"), torch.device("cpu"),
                  tmp_path).dataset(cell.dataset, plan)

    def trained(workers: int):
        monkeypatch.setenv("HARNESS_AUGMENT_WORKERS", str(workers))
        trainer = Trainer(COMPONENTS, cell, data, torch.device("cpu"))
        assert (trainer.ahead is not None) == bool(workers)
        torch.manual_seed(0)
        batches = list(trainer.batches())
        result = trainer.run()
        return (batches, trainer.generator.get_state(), torch.rand(2),
                [p.detach() for p in result.model.parameters()])

    (batches, generator, rng, weights), ahead = trained(0), trained(2)
    assert len(batches) == len(ahead[0]) == 2
    for (x, y), (xa, ya) in zip(batches, ahead[0], strict=True):
        assert torch.equal(x, xa) and torch.equal(y, ya)
    assert torch.equal(generator, ahead[1]) and torch.equal(rng, ahead[2])
    assert all(torch.equal(a, b) for a, b in zip(weights, ahead[3], strict=True))


def test_the_augment_workers_setting_is_checked(monkeypatch):
    from harness.devices import augment_workers

    assert augment_workers(torch.device("cpu")) == 0
    monkeypatch.setenv("HARNESS_AUGMENT_WORKERS", "3")
    assert augment_workers(torch.device("cpu")) == 3
    monkeypatch.setenv("HARNESS_AUGMENT_WORKERS", "some")
    with pytest.raises(Exception, match="HARNESS_AUGMENT_WORKERS='some' is not a number"):
        augment_workers(torch.device("cpu"))
