"""The Ray executor: the same cells and outcomes as a local run, the driver as the only writer."""

from __future__ import annotations

import sqlite3
import sys

import pytest
import torch

from harness.executors import DeferredStore
from harness.store import Store

SUITE = """\
datasets = [{ name = "synthetic", params = { train_size = 64, test_size = 24 } }]
architectures = [{ name = "small-cnn", params = { channels = 4, hidden = 8 } },
                 { name = "small-cnn", params = { channels = 2, hidden = 8 }, label = "thin" }]
recipes = [{ name = "r", defense = "standard", epochs = 2, batch_size = 32 }]
attacks = [{ name = "pgd", eps = 0.1, params = { steps = 3 } }, "fgsm-linf-0.1"]
metrics = ["params"]
"""


@pytest.fixture(scope="module")
def ray():
    """Ray for the module; the executor starts its local instance on first use."""
    ray = pytest.importorskip("ray")
    yield ray
    ray.shutdown()


def outcomes(folder) -> dict[str, bytes]:
    with sqlite3.connect(folder / "results.db") as conn:
        return dict(conn.execute("SELECT hash, robust FROM eval_cells WHERE status = 'done'"))


def test_ray_run_matches_a_local_run_and_resumes(ray, tmp_path, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "suite.toml").write_text(SUITE)
    local = run_cli("run", "suite.toml", "--output", "local", "--device", "cpu")
    assert local.exit_code == 0, local.output
    remote = run_cli("run", "suite.toml", "--output", "remote", "--device", "cpu",
                     "--executor", "ray")
    assert remote.exit_code == 0, remote.output
    assert "6 cells computed, 0 reused" in remote.stdout  # 2 trainings, 4 attacks
    assert len(outcomes(tmp_path / "remote")) == 4
    assert outcomes(tmp_path / "remote") == outcomes(tmp_path / "local")
    again = run_cli("run", "suite.toml", "--output", "remote", "--executor", "ray")
    assert "0 cells computed, 6 reused" in again.stdout


def test_a_users_mistake_in_a_worker_stops_the_run_with_its_message(ray, tmp_path, run_cli):
    suite = tmp_path / "cifar.toml"
    suite.write_text('datasets = ["cifar10"]\narchitectures = ["small-cnn"]\n'
                     'recipes = ["standard-cifar"]\n')
    result = run_cli("run", str(suite), "--output", str(tmp_path / "out"), "--executor", "ray",
                     "--data-root", str(tmp_path / "data"))
    assert result.exit_code == 2, result.output
    assert f"{suite}: datasets (cifar10): dataset 'cifar10': files not found" in result.stderr
    assert "Traceback" not in result.output


def test_deferred_store_reads_the_database_and_keeps_writes_for_the_driver(tmp_path):
    driver = Store(tmp_path)
    driver.record_clean("cell", None, torch.tensor([True, False]), {})
    worker = DeferredStore(tmp_path)
    assert worker.clean("cell", None).tolist() == [True, False]
    worker.record_clean("other", None, torch.tensor([True]), {})
    worker.note_cell(1, "eval", "e", "computed")
    assert driver.clean("other", None) is None  # nothing reached the database
    assert [name for name, _, _ in worker.writes] == ["record_clean", "note_cell"]
    assert worker.checkpoint_path("cell") == driver.checkpoint_path("cell")
    for name, args, kwargs in worker.writes:
        getattr(driver, name)(*args, **kwargs)
    assert driver.clean("other", None).tolist() == [True]


def test_suite_plugins_reach_the_workers_and_failures_are_recorded(ray, tmp_path, run_cli,
                                                                   plugin_dir):
    plugin_dir('''
        from harness import hookimpl


        def broken(params, info):
            raise RuntimeError("this architecture cannot be built")


        @hookimpl
        def harness_register_architectures(registry):
            registry.add("broken-net", broken)
        ''', name="broken_plugin")
    suite = tmp_path / "suite.toml"
    suite.write_text('plugins = ["./plugins"]\n' + SUITE.replace(
        '{ name = "small-cnn", params = { channels = 2, hidden = 8 }, label = "thin" }',
        '"broken-net"'))
    result = run_cli("run", str(suite), "--output", str(tmp_path / "out"), "--executor", "ray")
    assert result.exit_code == 1, result.output
    assert "broken-net" in result.stderr and "this architecture cannot be built" in result.stderr
    with sqlite3.connect(tmp_path / "out" / "results.db") as conn:
        statuses = sorted(status for (status,) in conn.execute("SELECT status FROM train_cells"))
    assert statuses == ["done", "failed"]


def test_deferred_store_defers_every_write_the_store_has():
    writes = {name for name in vars(Store)
              if name.startswith(("record_", "note_", "drop_", "forget_"))}
    assert writes == {"record_train", "record_clean", "record_metric", "record_eval", "note_cell",
                      "drop_training_state", "record_checkpoint_stat", "forget_train_cell"}
    assert all(vars(DeferredStore)[name].__name__ == name for name in writes)


def test_a_lost_worker_keeps_its_finished_training_for_the_next_run(ray, tmp_path, run_cli,
                                                                     plugin_dir, monkeypatch):
    """A worker killed during its attacks (say, out of memory) sent nothing back, but its
    training state stays on disk: the next run finishes the cell without training again."""
    plugin_dir('''
        import os

        from harness import hookimpl


        @hookimpl
        def harness_register_attacks(registry):
            registry.add("kill-worker", lambda params, threat: lambda model, x, y: os._exit(1))
        ''', name="killer")
    monkeypatch.chdir(tmp_path)
    one_cell = SUITE.replace(
        '\n                 { name = "small-cnn", params = { channels = 2, hidden = 8 }, label = "thin" }',
        "")
    (tmp_path / "crash.toml").write_text('plugins = ["./plugins"]\n' + one_cell.replace(
        '"fgsm-linf-0.1"]', '"fgsm-linf-0.1", { name = "kill-worker", eps = 0.1 }]'))
    (tmp_path / "suite.toml").write_text(one_cell)
    crashed = run_cli("run", "crash.toml", "--output", "out", "--executor", "ray")
    assert crashed.exit_code == 1, crashed.output
    assert "1 cell(s) failed (3 eval cells skipped" in crashed.stderr
    (state,) = (tmp_path / "out" / "checkpoints").glob("*.state.pt")
    resumed = run_cli("run", "suite.toml", "--output", "out", "--executor", "ray")
    assert resumed.exit_code == 0, resumed.output
    assert not state.exists()
    assert run_cli("run", "suite.toml", "--output", "local").exit_code == 0
    assert outcomes(tmp_path / "out") == outcomes(tmp_path / "local")


def test_without_ray_installed_the_executor_says_how_to_get_it(tmp_path, run_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed: import fails
    monkeypatch.chdir(tmp_path)
    (tmp_path / "suite.toml").write_text(SUITE)
    result = run_cli("run", "suite.toml", "--output", "out", "--executor", "ray")
    assert result.exit_code == 2, result.output
    assert result.stderr.endswith("error: --executor ray needs Ray: pip install 'ray>=2.9' (in a "
                                  "checkout: pip install -e '.[ray]')\n")
