"""Shared fixtures: suite and plugin writers, a CLI runner, the built-in components."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

pytest_plugins = ["pytester"]  # the plugin kit's tests run pytest on a plugin project

#: The smallest valid suite over the built-ins: 1 train cell, 1 eval cell.
MINIMAL_SUITE = """\
datasets = ["digits"]
architectures = ["small-cnn-digits"]
recipes = ["standard-digits"]
attacks = ["fgsm-linf-0.1"]
"""


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tiny test models run faster on one thread, and never fight other jobs for the cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def fit_on_digits():
    """``fit_on_digits(model, epochs, keep, min_accuracy) -> (model, x, y)``.

    Trains ``model`` (seeded by the caller) with Adam on the first 1400 scikit-learn digits in
    batches of 100 and returns it in eval mode with the first ``keep`` clean-correct test
    examples: real data the attack tests can break.
    """
    import torch
    from sklearn.datasets import load_digits
    from torch import nn

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16
    y = torch.tensor(data.target)

    def fit(model: nn.Module, epochs: int, keep: int, min_accuracy: float):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(epochs):
            for i in range(0, 1400, 100):
                optimizer.zero_grad()
                nn.functional.cross_entropy(model(x[i:i + 100]), y[i:i + 100]).backward()
                optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        model.eval()
        x_test, y_test = x[1400:], y[1400:]
        with torch.no_grad():
            correct = model(x_test).argmax(1) == y_test
        assert correct.float().mean() > min_accuracy
        return model, x_test[correct][:keep], y_test[correct][:keep]

    return fit


@pytest.fixture(autouse=True)
def _plugin_env(monkeypatch):
    """Neither the developer's shell nor the packages installed beside the harness (such as
    examples/harness-noise, which CI installs) change which plugins a test sees: entry points
    are off unless a test turns them on."""
    monkeypatch.setenv("HARNESS_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delenv("HARNESS_BLOCK_PLUGINS", raising=False)


@pytest.fixture
def write_suite(tmp_path):
    """``write_suite(text, name="suite.toml") -> Path``: a (dedented) suite file under tmp_path."""

    def write(text: str, name: str = "suite.toml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def minimal_suite(write_suite) -> Path:
    return write_suite(MINIMAL_SUITE)


@pytest.fixture
def plugin_dir(tmp_path):
    """``plugin_dir(source, name="extra_plugin", folder="plugins") -> Path`` of the folder.

    Writes ``<folder>/<name>.py`` under tmp_path; call again with another name to add a second
    file to the same folder.
    """

    def write(source: str, name: str = "extra_plugin", folder: str = "plugins") -> Path:
        directory = tmp_path / folder
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        return directory

    return write


@pytest.fixture
def run_cli():
    """``run_cli(*args) -> click Result`` of ``harness ARGS`` in-process (stderr kept apart)."""
    from harness.cli import cli

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, [str(a) for a in args], prog_name="harness")

    return invoke


@pytest.fixture(scope="session")
def components():
    """Built-in plugins and catalogue only (no entry points); registries are frozen."""
    from harness.session import load_components

    return load_components(autoload=False)
