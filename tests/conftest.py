"""Shared fixtures: suite and plugin writers, a CLI runner, the built-in components."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

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


@pytest.fixture(autouse=True)
def _plugin_env(monkeypatch):
    """The developer's shell must not change which plugins a test sees."""
    monkeypatch.delenv("HARNESS_DISABLE_PLUGIN_AUTOLOAD", raising=False)
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
    from harness.components import load_components

    return load_components(autoload=False)
