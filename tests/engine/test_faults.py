"""Planted faults, as a careful user would plant them: attacks that write into their input,
change a weight or move BatchNorm statistics, a model with no input gradient, damaged or
deleted checkpoints and training state, a full disk, a read-only folder and a locked
database. Each is caught with its reason, later cells are unaffected, and the healthy cells'
numbers equal those of a clean run."""

from __future__ import annotations

import errno
import os
import sqlite3

import pytest

FAULTS = '''
import os

import torch
from harness import Params, hookimpl


class FaultParams(Params):
    fault: str = "none"


def faulty(params, threat):
    def attack(model, x, y):
        if params.fault == "in-place":
            x += 0.5  # far beyond the budget, written into the input
            return x.clamp_(0, 1)
        if params.fault == "weight":
            with torch.no_grad():
                next(model.parameters()).add_(1.0)
        if params.fault == "bn":
            model.train()
            with torch.no_grad():
                model(torch.rand_like(x))
        return x.clone()
    return attack


class StopAt:
    """Standard training that raises KeyboardInterrupt (a kill) at the start of the epoch
    named by $STOP_AT_EPOCH: the cell's hash is the same with and without the kill."""

    def __init__(self, params, attack):
        pass

    def loss(self, model, x, y):
        return torch.nn.functional.cross_entropy(model(x), y)

    def on_epoch_start(self, model, epoch):
        if str(epoch) == os.environ.get("STOP_AT_EPOCH"):
            raise KeyboardInterrupt


class MaskedHead(torch.nn.Module):
    """Trains normally; in eval mode answers with a one-hot of its argmax (masked gradients)."""

    def __init__(self, info):
        super().__init__()
        self.linear = torch.nn.Linear(64, info.num_classes)

    def forward(self, x):
        logits = self.linear(x.flatten(1))
        if self.training:
            return logits
        return torch.nn.functional.one_hot(logits.argmax(1), logits.shape[1]).float() * 10


@hookimpl
def harness_register_attacks(registry):
    registry.add("faulty", faulty, params=FaultParams, norms=["linf"])


@hookimpl
def harness_register_defenses(registry):
    registry.add("stop-at", StopAt)


@hookimpl
def harness_register_architectures(registry):
    registry.add("masked", lambda params, info: MaskedHead(info))
'''

SUITE = """
plugins = ["faults.py"]
datasets = ["digits"]
architectures = [{{ name = "resnet18", params = {{ width = 4 }} }}]
recipes = [{{ name = "r", defense = "{defense}", epochs = 2, batch_size = 128, lr = 0.05{extra} }}]
attacks = [{attacks}]

[evaluation]
max_examples = 64
"""

CONTROL = ['"fgsm-linf-0.1"', '{ name = "pgd", eps = 0.1, params = { steps = 3 } }']


@pytest.fixture
def project(tmp_path, monkeypatch, run_cli):
    """``project(attacks=..., defense=..., extra=...)`` writes the suite; returns a runner."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "faults.py").write_text(FAULTS)

    def write(attacks=CONTROL, defense="standard", extra="", architecture=None):
        text = SUITE.format(defense=defense, extra=extra, attacks=", ".join(attacks))
        if architecture:
            text = text.replace('{ name = "resnet18", params = { width = 4 } }', architecture)
        (tmp_path / "suite.toml").write_text(text)
        return lambda: run_cli("run", "suite.toml", "--output", "out")

    return write


def accuracies(path="out/results.db") -> dict[str, float]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT attack_label, robust_accuracy FROM eval_cells "
                          "WHERE status = 'done'").fetchall()
        clean = db.execute("SELECT accuracy FROM clean_results").fetchall()
    return {**dict(rows), "clean": [c for (c,) in clean]}


def failures(path="out/results.db") -> dict[str, str]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT attack_label, error FROM eval_cells "
                               "WHERE status = 'failed'").fetchall())


@pytest.fixture
def control(project, tmp_path):
    """The healthy suite's numbers, from a clean run in another folder."""
    result = project()()
    assert result.exit_code == 0, result.output
    numbers = accuracies()
    os.rename(tmp_path / "out", tmp_path / "control")
    return numbers


@pytest.mark.parametrize(("fault", "reason"), [
    ("in-place", "the attack wrote into its input batch (in place)"),
    ("weight", "the attack changed the model (backbone.stem.0.weight); restored"),
    ("bn", "running_mean"),
])
def test_a_faulty_attack_fails_its_cell_and_leaves_the_model_whole(project, control, fault,
                                                                   reason):
    attacks = [f'{{ name = "faulty", eps = 0.1, params = {{ fault = "{fault}" }} }}', *CONTROL]
    result = project(attacks)()
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert reason in failures()["faulty"]
    assert accuracies() == control  # the attacks after it saw the model as trained


def test_a_model_without_input_gradients_is_flagged_and_the_run_goes_on(project):
    result = project(architecture='"masked"')()
    assert result.exit_code == 1 and "Traceback" not in result.output
    with sqlite3.connect("out/results.db") as db:
        (flags,) = db.execute("SELECT flags_json FROM clean_results").fetchone()
        errors = dict(db.execute("SELECT attack_label, error FROM eval_cells").fetchall())
    assert "zero-gradients" in flags
    assert set(errors) == {"fgsm-linf-0.1", "pgd"} and all(errors.values())


def flip_bytes(path, at=0.5):
    data = bytearray(path.read_bytes())
    middle = int(len(data) * at)
    data[middle:middle + 16] = bytes(b ^ 0xFF for b in data[middle:middle + 16])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_a_damaged_checkpoint_is_found_and_its_cell_recomputed(project, control, tmp_path,
                                                               damage):
    run = project()
    assert run().exit_code == 0
    [checkpoint] = (tmp_path / "out" / "checkpoints").glob("*[0-9a-f].safetensors")
    if damage == "truncate":
        checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    elif damage == "flip":
        flip_bytes(checkpoint)
    else:
        checkpoint.unlink()
    result = run()
    assert result.exit_code == 0, result.output
    found = {"truncate": "is truncated or replaced", "flip": "is damaged (sha256",
             "delete": "is missing"}[damage]
    assert f"checkpoint {checkpoint.relative_to(tmp_path)} {found}" in result.stderr
    assert "retraining digits / resnet18 / r / seed 0 and recomputing its results" in \
        result.stderr
    assert "0 reused from the store" in result.stdout
    assert accuracies() == control


def test_a_damaged_training_state_restarts_training_from_scratch(project, tmp_path,
                                                                 monkeypatch):
    run = project(defense="stop-at")
    assert run().exit_code == 0
    uninterrupted = accuracies()
    os.rename(tmp_path / "out", tmp_path / "uninterrupted")
    monkeypatch.setenv("STOP_AT_EPOCH", "1")
    assert run().exit_code == 130  # killed at the start of epoch 2: epoch 1's state is kept
    [state] = (tmp_path / "out" / "checkpoints").glob("*.state.pt")
    flip_bytes(state)
    monkeypatch.delenv("STOP_AT_EPOCH")
    result = run()
    assert result.exit_code == 0, result.output
    assert (f"training state {state.relative_to(tmp_path)} is damaged (sha256" in result.stderr
            and "from its first epoch" in result.stderr)
    assert accuracies() == uninterrupted


@pytest.mark.parametrize("fault", ["damaged", "missing"])
def test_a_bad_newest_training_state_resumes_from_the_one_before(project, tmp_path, monkeypatch,
                                                                 fault):
    """Two generations of training state are kept: a flipped newest one, or one a kill cut
    short mid-write (only the previous generation left), costs one epoch, not the cell."""
    run = project(defense="stop-at")
    suite = tmp_path / "suite.toml"
    suite.write_text(suite.read_text().replace("epochs = 2", "epochs = 3"))
    assert run().exit_code == 0
    uninterrupted = accuracies()
    os.rename(tmp_path / "out", tmp_path / "uninterrupted")
    monkeypatch.setenv("STOP_AT_EPOCH", "2")
    assert run().exit_code == 130  # killed at the start of epoch 3: states of epochs 1 and 2
    [state] = (tmp_path / "out" / "checkpoints").glob("*.state.pt")
    assert state.with_suffix(".previous.pt").is_file()
    if fault == "damaged":
        flip_bytes(state)
    else:
        state.unlink()
    monkeypatch.delenv("STOP_AT_EPOCH")
    result = run()
    assert result.exit_code == 0, result.output
    problem = "is damaged (sha256" if fault == "damaged" else "is missing"
    assert (f"training state {state.relative_to(tmp_path)} {problem}" in result.stderr
            and "from the state saved one epoch earlier" in result.stderr)
    assert accuracies() == uninterrupted
    assert not list((tmp_path / "out" / "checkpoints").glob("*state*"))


def test_a_full_disk_stops_with_one_line_and_keeps_what_finished(project, control, monkeypatch,
                                                                 tmp_path):
    import harness.checkpoints

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(harness.checkpoints, "save_model", full)
    run = project()
    result = run()
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.splitlines()[-1].startswith("error: cannot write out/checkpoints/")
    assert "No space left on device; free space" in result.stderr
    assert not list((tmp_path / "out" / "checkpoints").glob(".*tmp*"))  # no half files left
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    assert run().exit_code == 0
    assert accuracies() == control


def test_a_read_only_folder_is_one_line(project, monkeypatch):
    import harness.checkpoints

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(harness.checkpoints.os, "replace", read_only)
    result = project()()
    assert result.exit_code == 2
    assert "Read-only file system; free space or fix the folder's permissions" in result.stderr


def test_a_database_locked_by_another_process_is_one_line(project, monkeypatch, tmp_path):
    from harness.store import Store

    run = project()
    assert run().exit_code == 0
    monkeypatch.setattr(Store, "lock_timeout", 0.1)
    holder = sqlite3.connect(tmp_path / "out" / "results.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = run()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "results.db is locked by another process" in result.stderr
    assert run().exit_code == 0  # nothing was lost


def test_report_works_from_the_database_alone(project, tmp_path, run_cli):
    assert project()().exit_code == 0
    for path in (tmp_path / "out" / "checkpoints").iterdir():
        path.unlink()
    result = run_cli("report", "out")
    assert result.exit_code == 0, result.output
    assert "| resnet18 | r |" in result.stdout
