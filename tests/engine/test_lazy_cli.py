"""The command line answers without importing what it does not use: ``--help`` imports no
torch, ``list`` and ``plugins`` answer from the registration index (no torch, no plugin) until a
plugin, catalogue or setting changes, and nothing imports a toolkit before a factory is built."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import harness

ROOT = Path(harness.__file__).resolve().parent.parent
TOOLKITS = {"timm", "torchattacks", "art", "pyautoattack"}
PROBE = """
import atexit, sys
atexit.register(lambda: print("MODULES", *sorted({m.split(".")[0] for m in sys.modules}),
                              file=sys.stderr))
sys.argv = ["harness", *sys.argv[1:]]
from harness.cli import main
main()
"""


@pytest.fixture
def harness_cli(tmp_path):
    """``harness_cli(*args) -> (stdout, imported top-level modules)``, in a fresh interpreter
    with an empty index folder of its own."""
    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache"), "PYTHONPATH": ""}

    def run(*args: str) -> tuple[str, set[str]]:
        done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, check=True)
        modules = next(line for line in done.stderr.splitlines() if line.startswith("MODULES"))
        return done.stdout, set(modules.split()[1:])

    return run


def test_help_imports_no_torch(harness_cli):
    out, modules = harness_cli("--help")
    assert "Usage: harness" in out
    assert not modules & {"torch", *TOOLKITS}


def test_list_answers_from_the_index_once_it_exists(harness_cli):
    first, loaded = harness_cli("list")
    assert "torch" in loaded and not loaded & TOOLKITS  # a miss loads the plugins, lazily
    second, indexed = harness_cli("list")
    assert second == first and not indexed & {"torch", *TOOLKITS}
    plugins, indexed = harness_cli("plugins")
    assert "torchattacks_attacks" in plugins and "torch" not in indexed
    pgd, _ = harness_cli("list", "attacks", "pgd*")
    assert pgd.splitlines()[0] == "attacks:" and all(
        line.split()[0].startswith("pgd") for line in pgd.splitlines()[1:])


def test_a_changed_plugin_folder_is_loaded_again(harness_cli, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    plugin = folder / "mine.py"
    source = textwrap.dedent("""
        from harness import Params, hookimpl

        @hookimpl
        def harness_register_attacks(registry):
            registry.add("{name}", lambda params, threat: None, params=Params, norms=["linf"])
    """)
    plugin.write_text(source.format(name="first-noise"))
    out, _ = harness_cli("list", "attacks", "*-noise", "--plugins-dir", str(folder))
    assert "first-noise" in out
    plugin.write_text(source.format(name="second-noise"))
    out, modules = harness_cli("list", "attacks", "*-noise", "--plugins-dir", str(folder))
    assert "second-noise" in out and "first-noise" not in out and "torch" in modules


def test_validating_a_preset_suite_imports_no_toolkit(harness_cli):
    out, modules = harness_cli("validate", "suites/quickstart.toml")
    assert "ok" in out and not modules & TOOLKITS
