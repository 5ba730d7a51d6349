"""The README's commands and examples are the real ones, and every hook is documented."""

from __future__ import annotations

import inspect
from pathlib import Path

from click.testing import CliRunner

from harness import hookspecs
from harness.cli import cli

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_ci_runs_the_readme_test_command():
    command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert f"```bash\n{command}\n```" in README


def test_readme_quickstart_command_runs_the_quickstart_suite():
    assert ".venv/bin/harness run suites/quickstart.toml\n```" in README
    assert (ROOT / "suites" / "quickstart.toml").exists()


def test_readme_shows_the_example_plugin_and_suite_verbatim():
    assert (ROOT / "examples" / "my_plugins" / "noise.py").read_text() in README
    assert (ROOT / "examples" / "noise-suite.toml").read_text() in README


def test_example_suite_runs_with_its_plugin(tmp_path):
    result = CliRunner().invoke(cli, ["run", str(ROOT / "examples" / "noise-suite.toml"),
                                      "--output", str(tmp_path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "random-corners (linf eps=0.1)" in result.output


def test_every_hook_is_documented_with_its_signature():
    hooks = [f for name, f in vars(hookspecs).items() if name.startswith("harness_")]
    assert hooks
    for hook in hooks:
        assert inspect.getdoc(hook) and len(inspect.getdoc(hook)) > 80, hook.__name__
        assert f"`{hook.__name__}(registry)`" in README
