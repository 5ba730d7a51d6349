"""The training engine: schedules, optimizers, EMA, validation and best checkpoint, resumption."""

from __future__ import annotations

import pytest
import torch

from harness.plan import build_plan
from harness.runner import Runner
from harness.schedule import lr_factor
from harness.session import load_components
from harness.specs import Recipe
from harness.store import Store
from harness.suite import load_suite
from harness.train import Trainer

COMPONENTS = load_components(autoload=False)

SUITE = """
datasets = [{{ name = "synthetic", params = {{ train_size = 96, test_size = 32 }} }}]
architectures = [{{ name = "small-cnn", params = {{ channels = 4, hidden = 16 }} }}]
recipes = [{recipe}]
"""

AT_RECIPE = ('{ name = "at", defense = "pgd-at", epochs = 4, batch_size = 32, lr = 0.05, '
             'augment = "crop-flip", crop_padding = 1, ema = 0.9, checkpoint = "best", '
             'validation = { fraction = 0.25, max_examples = 16 }, '
             'attack = { name = "pgd", eps = 0.1, params = { steps = 2 } } }')


def cell_and_data(tmp_path, recipe: str = AT_RECIPE):
    path = tmp_path / "suite.toml"
    path.write_text(SUITE.format(recipe=recipe))
    plan = build_plan(COMPONENTS, load_suite(path))
    runner = Runner(COMPONENTS, Store(tmp_path / "out"), torch.device("cpu"), tmp_path)
    cell = plan.train_cells[0]
    return cell, runner.dataset(cell.dataset, plan)


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resumed_training_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    cell, data = cell_and_data(tmp_path)
    uninterrupted = Trainer(COMPONENTS, cell, data, torch.device("cpu")).run()

    state = tmp_path / "state.pt"
    first = Trainer(COMPONENTS, cell, data, torch.device("cpu"), state)
    for _ in range(2):  # then the process is "killed": only the state file survives
        first.end_epoch(first.run_epoch())
        first.save_state()
    resumed = Trainer(COMPONENTS, cell, data, torch.device("cpu"), state)
    assert resumed.load_state() and resumed.epoch == 2
    result = Trainer(COMPONENTS, cell, data, torch.device("cpu"), state).run()

    expected, got = weights(uninterrupted.model), weights(result.model)
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    assert result.history == uninterrupted.history
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4]


def test_history_validation_and_best_checkpoint(tmp_path):
    cell, data = cell_and_data(tmp_path)
    result = Trainer(COMPONENTS, cell, data, torch.device("cpu")).run()
    assert set(result.history[0]) == {"epoch", "loss", "lr", "train_clean", "train_robust",
                                      "val_clean", "val_robust"}
    best_epoch = max(result.history, key=lambda r: r["val_robust"])  # first best wins ties
    assert result.best_state is not None and result.last_state is not None
    chosen = weights(result.model)
    assert all(torch.equal(chosen[k], v) for k, v in result.best_state.items())
    assert best_epoch["val_robust"] >= result.history[-1]["val_robust"]
    assert {"final_train_robust", "final_val_robust"} <= set(result.summary)


def test_loss_goes_down_with_adamw_and_cosine_warmup(tmp_path):
    recipe = ('{ name = "adamw", defense = "standard", epochs = 6, batch_size = 16, '
              'optimizer = "adamw", lr = 0.01, weight_decay = 0.05, schedule = "cosine", '
              'warmup_epochs = 1 }')
    cell, data = cell_and_data(tmp_path, recipe)
    history = Trainer(COMPONENTS, cell, data, torch.device("cpu")).run().history
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    assert history[-1]["lr"] == pytest.approx(0.0, abs=1e-12)


def recipe(**kwargs) -> Recipe:
    return Recipe(epochs=10, lr=1.0, **kwargs)


@pytest.mark.parametrize(("settings", "step", "expected"), [
    ({"milestones": [5, 8]}, 0, 1.0),
    ({"milestones": [5, 8]}, 49, 1.0),  # the last step of epoch 4, before the drop
    ({"milestones": [5, 8]}, 50, 0.1),
    ({"milestones": [5, 8]}, 80, 0.01),
    ({"schedule": "cosine", "min_lr": 0.1}, 99, 0.1),
    ({"schedule": "cosine", "warmup_epochs": 2}, 9, 0.5),
    ({"schedule": "cyclic", "cycle_peak": 0.5}, 49, 1.0),
    ({"schedule": "cyclic", "cycle_peak": 0.5}, 99, 0.0),
    ({"schedule": "constant"}, 70, 1.0),
])
def test_lr_schedules(settings, step, expected):
    assert lr_factor(recipe(**settings), step, steps_per_epoch=10) == pytest.approx(expected)


def test_best_checkpoint_needs_validation():
    with pytest.raises(ValueError, match='checkpoint = "best" needs a validation split'):
        Recipe(epochs=1, checkpoint="best")
