"""The plugin contract, as a plugin author meets it: every mistake found at load or in a
suite is one line naming the file and the fix (exit 2), and a local plugin's code is part of
the cells it provides (golden messages)."""

from __future__ import annotations

import json
import sqlite3
import textwrap

import pytest

ATTACK = """\
from harness import Params, hookimpl


class NoiseParams(Params):
    tries: int = 3


def make(params, threat):
    return lambda model, x, y: x


@hookimpl
def harness_register_attacks(registry):
    registry.add("identity", make, params=NoiseParams, norms=["linf"])
"""

SUITE = """\
plugins = ["my_plugins/noise.py"]
datasets = [{ name = "digits" }]
architectures = [{ name = "small-cnn", params = { channels = 2, hidden = 8 } }]
recipes = [{ name = "standard-digits", epochs = 1 }]
attacks = [{ name = "identity", eps = 0.1%s }, "fgsm-linf-0.1"]

[evaluation]
max_examples = 32
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A research folder: ``my_plugins/noise.py`` and ``suite.toml``, the working directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_plugins").mkdir()

    def write(plugin: str = ATTACK, params: str = "") -> None:
        (tmp_path / "my_plugins" / "noise.py").write_text(textwrap.dedent(plugin))
        (tmp_path / "suite.toml").write_text(SUITE % params)

    return write


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    return result.stderr.removeprefix("error: ").strip()


BROKEN = {
    "wrong-argument": (ATTACK.replace("harness_register_attacks(registry)",
                                      "harness_register_attacks(reg)"),
                       "my_plugins/noise.py: harness_register_attacks(reg) takes arguments the "
                       "hook does not have; write harness_register_attacks(registry)"),
    "hook-name-typo": (ATTACK.replace("harness_register_attacks", "harness_register_attack"),
                       "my_plugins/noise.py: unknown hook 'harness_register_attack'. Did you "
                       "mean: harness_register_attacks, harness_register_datasets, "
                       "harness_register_metrics? The hooks are listed in harness/hookspecs.py"),
    "not-marked": (ATTACK.replace("@hookimpl\n", ""),
                   "my_plugins/noise.py: harness_register_attacks is not marked as a hook, so it "
                   "would never be called; put @hookimpl (from harness import hookimpl) above it"),
    "import-error": ("import no_such_module\n" + ATTACK,
                     "my_plugins/noise.py: plugin failed to import: ModuleNotFoundError: No "
                     "module named 'no_such_module'"),
    "not-callable": (ATTACK.replace('registry.add("identity", make,',
                                    'registry.add("identity", 42,'),
                     "attack 'identity' from plugin 'noise': the factory must be callable, got "
                     "int 42"),
    "duplicate-name": (ATTACK.replace('"identity"', '"fgsm"'),
                       "attack 'fgsm' is registered by both 'torchattacks_attacks' and 'noise'; "
                       "rename one or block a plugin with --block-plugin"),
    "loose-params": (ATTACK.replace("class NoiseParams(Params)", "class NoiseParams(BaseModel)")
                     .replace("from harness import Params, hookimpl",
                              "from pydantic import BaseModel\nfrom harness import hookimpl"),
                     "attack 'identity' from plugin 'noise': params model NoiseParams ignores "
                     "unknown keys, so a typo in a suite would be silently dropped; derive it "
                     'from harness.Params (or set model_config = ConfigDict(extra="forbid"))'),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_plugin_mistake_is_one_line_naming_the_fix(case, project, run_cli):
    source, message = BROKEN[case]
    project(source)
    error = one_line_error(run_cli("validate", "suite.toml"))
    if case in ("not-callable", "duplicate-name", "loose-params"):
        assert error.endswith(message) and "noise.py" in error, error
    else:
        assert error.endswith(message), error


def test_a_typo_in_a_plugin_param_names_the_suite_key_and_the_allowed_keys(project, run_cli):
    project(params=", params = { trys = 3 }")
    assert one_line_error(run_cli("validate", "suite.toml")) == (
        "suite.toml: attacks[0].params.trys: unknown key 'trys'. Did you mean: tries? "
        "Allowed keys: tries.")


def test_plugins_dir_may_name_a_file(project, run_cli, tmp_path):
    project()
    result = run_cli("list", "attacks", "identity", "--plugins-dir", "my_plugins/noise.py")
    assert result.exit_code == 0, result.output
    assert "identity" in result.output and "plugin noise" in result.output


def test_a_catalogue_presets_bad_eps_is_blamed_on_the_catalogue(project, run_cli, tmp_path):
    project()
    (tmp_path / "cat.toml").write_text(
        '[attacks.my-pgd]\nfactory = "pgd"\nnorm = "linf"\neps = 8\n')
    (tmp_path / "suite.toml").write_text(
        'catalogues = ["cat.toml"]\ndatasets = ["digits"]\narchitectures = ["small-cnn-digits"]\n'
        'recipes = ["standard-digits"]\nattacks = ["my-pgd"]\n')
    assert one_line_error(run_cli("validate", "suite.toml")) == (
        "cat.toml: attacks.my-pgd.eps: eps = 8 exceeds the whole [0,1] pixel range of a linf "
        "attack; write it in [0,1] units, e.g. \"8/255\" (dataset 'digits'; used by suite.toml: "
        "attacks[0])")


def test_a_catalogue_recipes_bad_training_eps_is_blamed_on_the_catalogue(project, run_cli,
                                                                         tmp_path):
    project()
    (tmp_path / "cat.toml").write_text(
        '[recipes.my-at]\ndefense = "pgd-at"\nepochs = 1\n'
        'attack = { name = "pgd", norm = "linf", eps = 8 }\n')
    (tmp_path / "suite.toml").write_text(
        'catalogues = ["cat.toml"]\ndatasets = ["digits"]\narchitectures = ["small-cnn-digits"]\n'
        'recipes = ["my-at"]\n')
    assert one_line_error(run_cli("validate", "suite.toml")).startswith(
        "cat.toml: recipes.my-at.attack.eps: eps = 8 exceeds")


def statuses(run_cli) -> dict[str, str]:
    """Eval cell label → done/todo, from ``harness run --dry-run``."""
    result = run_cli("run", "suite.toml", "--output", "out", "--dry-run")
    assert result.exit_code == 0, result.output
    return {line.split()[2]: line.split()[1] for line in result.stdout.splitlines()
            if line.startswith("  ")}


def test_editing_a_local_plugin_recomputes_exactly_its_cells(project, run_cli, tmp_path):
    project()
    assert run_cli("run", "suite.toml", "--output", "out").exit_code == 0
    assert statuses(run_cli) == {"identity": "done", "fgsm-linf-0.1": "done"}
    project(ATTACK.replace("lambda model, x, y: x", "lambda model, x, y: x.clone()"))
    assert statuses(run_cli) == {"identity": "todo", "fgsm-linf-0.1": "done"}
    result = run_cli("run", "suite.toml", "--output", "out")
    assert result.exit_code == 0, result.output
    assert "1 cells computed, 2 reused from the store" in result.stdout
    environment = json.loads(sqlite3.connect(tmp_path / "out" / "results.db").execute(
        "SELECT environment_json FROM runs ORDER BY id DESC LIMIT 1").fetchone()[0])
    noise = environment["plugins"]["noise"]
    assert noise["source"] == "directory" and len(noise["source_sha256"]) == 64
    assert environment["plugins"]["cnns"]["source_sha256"] is None
    assert {"torch", "torchattacks", "pyautoattack", "adversarial-robustness-toolbox",
            "timm"} <= set(environment["libraries"])
