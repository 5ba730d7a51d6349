"""The plugin authors' kit: its checks pass on a good plugin and fail, naming the problem, on
planted broken ones; ``harness check`` and the pytest plugin run the same checks."""

from __future__ import annotations

import pytest

from harness.testing import ConformanceFailure, Skipped, plugin_cases

GOOD = '''
import torch
from torch import nn
from harness import Params, hookimpl, normalized


class NoiseParams(Params):
    scale: float = 1.0


def noise(params, threat):
    def attack(model, x, y):
        return (x + params.scale * threat.eps * torch.randn_like(x).sign()).clamp(0, 1)
    return attack


def flat(params, info):
    c, h, w = info.input_shape
    return normalized(nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, info.num_classes)), info)


@hookimpl
def harness_register_attacks(registry):
    registry.add("noise", noise, params=NoiseParams, norms=["linf"])


@hookimpl
def harness_register_architectures(registry):
    registry.add("flat", flat)
'''

WRONG_SHAPE = '''
from harness import hookimpl


def make(params, threat):
    return lambda model, x, y: x[:, :, :4]


@hookimpl
def harness_register_attacks(registry):
    registry.add("cropper", make)
'''

IN_PLACE = '''
from harness import hookimpl


def make(params, threat):
    def attack(model, x, y):
        x += 0.5  # beyond any budget, and in place
        return x.clamp_(0, 1)
    return attack


@hookimpl
def harness_register_attacks(registry):
    registry.add("in-place", make)
'''

NO_LOSS = '''
from harness import hookimpl


class Nothing:
    pass


@hookimpl
def harness_register_defenses(registry):
    registry.add("nothing", lambda params, attack: Nothing())
'''

NOOP = '''
from harness import Params, hookimpl


@hookimpl
def harness_register_attacks(registry):
    registry.add("noop", lambda params, threat: (lambda model, x, y: x.clone()), params=Params)
'''

#: A user's catalogue whose recipe trains against GOOD's attack.
NOISE_RECIPE = '''
[recipes.noise-at]
defense = "pgd-at"
attack = { name = "noise", norm = "linf", eps = 0.1 }
epochs = 1
'''

LOOSE_PARAMS = '''
from pydantic import BaseModel
from harness import hookimpl


class Loose(BaseModel):
    tries: int = 3


@hookimpl
def harness_register_attacks(registry):
    registry.add("loose", lambda params, threat: (lambda m, x, y: x), params=Loose)
'''


def write(tmp_path, source: str, name: str):
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    return path


def test_a_good_plugin_passes_every_case(tmp_path):
    cases = plugin_cases(write(tmp_path, GOOD, "good"))
    assert sorted(map(str, cases)) == ["architectures:flat", "attacks:noise-linf"]
    for case in cases:
        case.check()


@pytest.mark.parametrize(("source", "message"), [
    (WRONG_SHAPE, "attack 'cropper' (plugin wrong_shape): at linf: "),
    (NO_LOSS, "defense 'nothing' (plugin no_loss): the defense has neither loss(model, x, y) "
              "nor train_batch(...)"),
])
def test_broken_plugins_fail_their_check(tmp_path, source, message):
    name = "wrong_shape" if source is WRONG_SHAPE else "no_loss"
    [case] = plugin_cases(write(tmp_path, source, name))
    with pytest.raises(ConformanceFailure) as info:
        case.check()
    assert str(info.value).startswith(message)


def test_an_attack_mutating_its_input_fails(tmp_path):
    [case] = plugin_cases(write(tmp_path, IN_PLACE, "in_place"))
    with pytest.raises(ConformanceFailure, match="in-place"):
        case.check()


def test_a_dataset_without_files_is_skipped():
    from harness.session import load_components
    from harness.testing import check_dataset

    with pytest.raises(Skipped, match="cifar10"):
        check_dataset(load_components(autoload=False).datasets.get("cifar10"))


def test_harness_check_reports_each_case(run_cli, tmp_path):
    result = run_cli("check", write(tmp_path, GOOD, "good"))
    assert result.exit_code == 0, result.output
    assert "OK    attacks:noise-linf" in result.output
    assert result.output.strip().endswith("2 checks: 2 ok, 0 failed, 0 skipped")


def test_harness_check_fails_a_broken_plugin_with_exit_1(run_cli, tmp_path):
    result = run_cli("check", write(tmp_path, WRONG_SHAPE, "wrong_shape"))
    assert result.exit_code == 1
    assert "FAIL  attacks:cropper-linf: attack 'cropper'" in result.output


def test_harness_check_fails_a_params_model_that_ignores_keys(run_cli, tmp_path):
    path = write(tmp_path, LOOSE_PARAMS, "loose")
    result = run_cli("check", path)
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"FAIL  {path}: attack 'loose' from plugin 'loose': params model Loose ignores unknown "
        "keys, so a typo in a suite would be silently dropped; derive it from harness.Params (or "
        'set model_config = ConfigDict(extra="forbid"))')


def test_harness_check_names_an_unknown_target(run_cli, tmp_path):
    result = run_cli("check", "no-such-plugin")
    assert result.exit_code == 1
    assert "no-such-plugin: no such file or folder, and no installed plugin of that name" in \
        result.output


@pytest.mark.parametrize(("source", "exit_code", "line"), [
    (WRONG_SHAPE, 1, "FAIL  attacks:cropper-linf: attack 'cropper' (plugin extra): at linf: "),
    (NOOP, 0, "OK    attacks:noop-linf"),
], ids=["broken", "good"])
def test_harness_check_checks_the_plugins_of_plugins_dir(run_cli, tmp_path, plugin_dir,
                                                         source, exit_code, line):
    """What --plugins-dir adds is checked beside TARGET, not only loaded (nor ignored)."""
    folder = plugin_dir(source, name="extra", folder="more")
    result = run_cli("check", write(tmp_path, GOOD, "good"), "--plugins-dir", folder)
    assert result.exit_code == exit_code, result.output
    assert any(out.startswith(line) for out in result.stdout.splitlines()), result.output
    assert result.stdout.strip().endswith(f"3 checks: {3 - exit_code} ok, {exit_code} failed, "
                                          "0 skipped")


def test_harness_check_skips_a_blocked_plugin_and_warns_about_an_unmatched_name(
        run_cli, tmp_path, plugin_dir):
    folder = plugin_dir(WRONG_SHAPE, name="wrong_shape", folder="more")
    result = run_cli("check", write(tmp_path, GOOD, "good"), "--plugins-dir", folder,
                     "--block-plugin", "wrong_shape", "--block-plugin", "nosuch")
    assert result.exit_code == 0, result.output
    assert "cropper" not in result.stdout
    assert result.stdout.strip().endswith("2 checks: 2 ok, 0 failed, 0 skipped")
    assert result.stderr == ("warning: blocked plugin 'nosuch' matched no plugin; check the name "
                             "('harness plugins' lists them)\n")


def test_harness_check_says_the_target_is_blocked(run_cli, tmp_path):
    path = write(tmp_path, GOOD, "good")
    result = run_cli("check", path, "--block-plugin", "good")
    assert result.exit_code == 1
    assert result.output == (f"FAIL  {path}: blocked (good: --block-plugin or "
                             "HARNESS_BLOCK_PLUGINS), so there is nothing to check; unblock it\n")


def test_harness_check_checks_the_recipes_of_a_catalogue(run_cli, tmp_path):
    """A user's recipe preset is built with the target's attack; one needing an attack that
    no loaded plugin provides fails, naming the catalogue's key."""
    catalogue = tmp_path / "mine.toml"
    catalogue.write_text(NOISE_RECIPE)
    result = run_cli("check", write(tmp_path, GOOD, "good"), "--catalogue", catalogue)
    assert result.exit_code == 0, result.output
    assert "OK    recipes:noise-at" in result.stdout.splitlines()
    assert result.stdout.strip().endswith("3 checks: 3 ok, 0 failed, 0 skipped")
    result = run_cli("check", write(tmp_path, NOOP, "noop"), "--catalogue", catalogue)
    assert result.exit_code == 1
    assert result.output.startswith(f"FAIL  {catalogue}: recipes.noise-at.attack.name: unknown "
                                    "attack 'noise'.")


def test_the_pytest_plugin_parametrizes_harness_case(pytester):
    pytester.makepyfile(good=GOOD)
    pytester.makeini("[pytest]\nharness_plugins = good.py\n")
    pytester.makepyfile(test_plugin="def test_conformance(harness_case):\n    harness_case.check()\n")
    result = pytester.runpytest_inprocess("-q")
    result.assert_outcomes(passed=2)
