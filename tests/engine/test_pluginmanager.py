import importlib.metadata
import json
import sys
import types

import pytest

from harness import hookimpl
from harness.errors import PluginError, UserError
from harness.paths import builtin_plugins_dir
from harness.pluginmanager import (
    ENTRY_POINT_GROUP,
    build_plugin_manager,
    plugin_files,
    source_sha256,
)
from harness.session import load_components

#: Every file of plugins/ is a built-in plugin; these hooks are pinned for the core ones.
BUILTIN_NAMES = sorted(p.stem for p in plugin_files(builtin_plugins_dir()))
CORE_HOOKS = {
    "cnns": ("harness_register_architectures",),
    "datasets": ("harness_register_datasets",),
    "defenses": ("harness_register_defenses",),
    "torchattacks_attacks": ("harness_register_attacks",),
    "metrics": ("harness_register_metrics",),
}

ATTACK_PLUGIN = """\
from harness import hookimpl

__version__ = "{version}"


def make(params, threat):
    return lambda model, x, y: x


@hookimpl
def harness_register_attacks(registry):
    registry.add("{attack}", make, norms=["linf", "l2"], description="returns x unchanged")
"""


def attack_plugin(attack="identity", version="1.4"):
    return ATTACK_PLUGIN.format(attack=attack, version=version)


# --- plugin directories ---------------------------------------------------------------------------


def test_builtins_only():
    pm = build_plugin_manager(autoload=False)
    assert sorted(pm.infos) == BUILTIN_NAMES
    assert {name: pm.infos[name].hooks for name in CORE_HOOKS} == CORE_HOOKS
    assert all(info.hooks for info in pm.infos.values())
    assert {info.source for info in pm.infos.values()} == {"builtin"}


def test_directory_plugin_attack_is_stamped_with_its_plugin_name(plugin_dir):
    folder = plugin_dir(attack_plugin(), name="my_attacks")
    components = load_components([folder], autoload=False)

    entry = components.attacks.get("identity")
    assert entry.plugin == "my_attacks"
    assert entry.version == "1.4"  # the module's __version__
    assert entry.norms == ("linf", "l2")
    assert components.attacks.get("pgd").plugin == "torchattacks_attacks"

    info = components.pm.infos["my_attacks"]
    assert info.source == "directory"
    assert info.location == str((folder / "my_attacks.py").resolve())
    assert info.hooks == ("harness_register_attacks",)
    assert info.version == "1.4"


def test_directory_skips_underscore_files(plugin_dir):
    folder = plugin_dir("raise RuntimeError('helper must not be imported')\n", name="_helpers")
    plugin_dir(attack_plugin(), name="visible", folder=folder.name)
    pm = build_plugin_manager([folder], autoload=False)
    assert "visible" in pm.infos
    assert "_helpers" not in pm.infos


def test_a_package_folder_is_one_plugin_whose_modules_import_each_other(tmp_path):
    package = tmp_path / "plugins" / "noisepkg"
    package.mkdir(parents=True)
    (package / "attack.py").write_text("def make(params, threat):\n    return lambda m, x, y: x\n")
    (package / "__init__.py").write_text(
        "from harness import hookimpl\n\nfrom .attack import make\n\n__version__ = '3'\n\n"
        "@hookimpl\ndef harness_register_attacks(registry):\n"
        "    registry.add('identity-pkg', make, norms=['linf'])\n")
    components = load_components([tmp_path / "plugins"], autoload=False)
    entry = components.attacks.get("identity-pkg")
    assert (entry.plugin, entry.version) == ("noisepkg", "3")
    assert components.pm.infos["noisepkg"].source == "directory"


def test_missing_plugin_directory(tmp_path):
    with pytest.raises(PluginError) as info:
        build_plugin_manager([tmp_path / "nope"], autoload=False)
    assert str(info.value) == (
        f"plugin folder or file {tmp_path / 'nope'} does not exist; check the path "
        "(relative paths in a suite are relative to the suite file)"
    )


def test_plugin_import_error_names_the_file(plugin_dir):
    folder = plugin_dir("import no_such_module_for_harness_tests\n", name="broken")
    path = (folder / "broken.py").resolve()
    with pytest.raises(PluginError) as info:
        load_components([folder], autoload=False)
    assert str(info.value) == (
        f"{path}: plugin failed to import: ModuleNotFoundError: "
        "No module named 'no_such_module_for_harness_tests'"
    )
    assert not any(name.endswith("_broken") and name.startswith("_harness_plugin_")
                   for name in sys.modules), "a failed import must not stay cached"


def test_plugin_hook_raising_is_plugin_error(plugin_dir):
    folder = plugin_dir(
        """\
        from harness import hookimpl

        @hookimpl
        def harness_register_attacks(registry):
            raise ValueError("boom")
        """,
        name="exploding",
    )
    with pytest.raises(PluginError) as info:
        load_components([folder], autoload=False)
    assert str(info.value) == (f"{folder / 'exploding.py'}: plugin 'exploding' failed in "
                               "harness_register_attacks: ValueError: boom")


def test_two_plugins_registering_same_attack_names_both(plugin_dir):
    folder = plugin_dir(attack_plugin("twin"), name="alpha")
    plugin_dir(attack_plugin("twin"), name="beta")
    with pytest.raises(PluginError) as info:
        load_components([folder], autoload=False)
    assert str(info.value) == (
        f"{folder / 'beta.py'}: attack 'twin' is registered by both 'alpha' and 'beta'; rename "
        "one or block a plugin with --block-plugin"
    )


def test_plugin_shadowing_a_builtin_attack_names_both(plugin_dir):
    folder = plugin_dir(attack_plugin("pgd"), name="my_pgd")
    with pytest.raises(PluginError, match=r"my_pgd.py: attack 'pgd' is registered by both "
                                          r"'torchattacks_attacks' and 'my_pgd';"):
        load_components([folder], autoload=False)


def test_blocking_resolves_a_collision(plugin_dir):
    folder = plugin_dir(attack_plugin("twin"), name="alpha")
    plugin_dir(attack_plugin("twin", version="9"), name="beta")
    components = load_components([folder], blocked=["alpha"], autoload=False)
    assert components.attacks.get("twin").plugin == "beta"
    assert "alpha" not in components.pm.infos


def test_blocking_a_builtin_hides_the_builtin_presets_that_need_it():
    components = load_components(blocked=["cnns"], autoload=False)
    assert "small-cnn" not in components.architectures
    presets = components.catalogue.names("architectures")
    assert "small-cnn-digits" not in presets and "wrn-34-10" not in presets
    assert "pgd20-linf-0.1" in components.catalogue.names("attacks")


def test_blocking_builtin_defenses_hides_every_builtin_recipe():
    components = load_components(blocked=["defenses"], autoload=False)
    assert components.catalogue.names("recipes") == []


def test_a_user_catalogue_needing_a_blocked_plugin_is_an_error(tmp_path):
    catalogue = tmp_path / "mine.toml"
    catalogue.write_text('[architectures.tiny]\nfactory = "small-cnn"\n')
    with pytest.raises(UserError) as info:
        load_components(catalogue_files=[catalogue], blocked=["cnns"], autoload=False)
    assert str(info.value).startswith(
        f"{catalogue}: architectures.tiny.factory: unknown architecture 'small-cnn'.")


def test_blocking_builtin_variants_hides_the_presets_that_use_them():
    components = load_components(blocked=["variants"], autoload=False)
    names = components.catalogue.names("architectures")
    assert "resnet18-digits" in names
    assert not [name for name in names if "sparta" in name or "upsample" in name]


def test_a_user_catalogue_variant_mistake_names_the_catalogue_key(tmp_path):
    catalogue = tmp_path / "mine.toml"
    catalogue.write_text('[architectures.tiny]\nfactory = "small-cnn"\n'
                         'variants = ["gelu", { name = "upsample", params = { scale = 0 } }]\n')
    with pytest.raises(UserError) as info:
        load_components(catalogue_files=[catalogue], autoload=False)
    assert str(info.value) == (f"{catalogue}: architectures.tiny.variants[1].params.scale: "
                               "Input should be greater than 0 (got 0)")


def test_same_file_name_in_two_folders(plugin_dir):
    one = plugin_dir(attack_plugin("a1"), name="same", folder="one")
    two = plugin_dir(attack_plugin("a2"), name="same", folder="two")
    with pytest.raises(PluginError, match=r"two plugins are named 'same': .*one.*same\.py and "
                                          r".*two.*same\.py; rename one of the files"):
        build_plugin_manager([one, two], autoload=False)


# --- entry points ---------------------------------------------------------------------------------


class FakeDistribution(importlib.metadata.Distribution):
    """An installed distribution that exists only in memory (pluggy's own tests do the same)."""

    def __init__(self, name, version, entry_points):
        self._files = {
            "METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
            "entry_points.txt": entry_points,
        }

    def read_text(self, filename):
        return self._files.get(filename)

    def locate_file(self, path):
        raise NotImplementedError


@pytest.fixture
def fake_entry_point(monkeypatch):
    """Install 'ep-plugin' (module fake_harness_ep) of distribution fake-dist 2.3.0, with
    entry points on (as in a user's shell)."""
    monkeypatch.delenv("HARNESS_DISABLE_PLUGIN_AUTOLOAD")
    module = types.ModuleType("fake_harness_ep")

    @hookimpl
    def harness_register_attacks(registry):
        registry.add("ep-attack", lambda params, threat: None, norms=["linf"])

    module.harness_register_attacks = harness_register_attacks
    monkeypatch.setitem(sys.modules, "fake_harness_ep", module)
    dist = FakeDistribution(
        "fake-dist", "2.3.0",
        f"[{ENTRY_POINT_GROUP}]\nep-plugin = fake_harness_ep\n\n[other_group]\nnot-ours = os\n",
    )
    calls = []

    def entry_points(**selection):
        calls.append(selection)
        return [ep for ep in dist.entry_points if ep.group == selection.get("group")]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    return calls


def test_entry_point_plugin_is_loaded(fake_entry_point):
    components = load_components()  # autoload from the (clean) environment
    assert fake_entry_point == [{"group": "robust_harness"}]
    info = components.pm.infos["ep-plugin"]
    assert info.source == "entry-point"
    assert info.version == "2.3.0"
    assert info.location == "fake-dist 2.3.0 (fake_harness_ep)"
    assert info.hooks == ("harness_register_attacks",)
    entry = components.attacks.get("ep-attack")
    assert (entry.plugin, entry.version) == ("ep-plugin", "2.3.0")
    assert "not-ours" not in components.pm.infos


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_disable_autoload_env_skips_entry_points(fake_entry_point, monkeypatch, value):
    monkeypatch.setenv("HARNESS_DISABLE_PLUGIN_AUTOLOAD", value)
    components = load_components()
    assert fake_entry_point == []  # entry points were not even listed
    assert "ep-plugin" not in components.pm.infos
    assert "ep-attack" not in components.attacks


def test_disable_autoload_env_zero_still_loads(fake_entry_point, monkeypatch):
    monkeypatch.setenv("HARNESS_DISABLE_PLUGIN_AUTOLOAD", "0")
    assert "ep-attack" in load_components().attacks


def test_autoload_argument_overrides_env(fake_entry_point, monkeypatch):
    monkeypatch.setenv("HARNESS_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert "ep-attack" in load_components(autoload=True).attacks
    monkeypatch.delenv("HARNESS_DISABLE_PLUGIN_AUTOLOAD")
    assert "ep-attack" not in load_components(autoload=False).attacks


def test_block_env_blocks_entry_point(fake_entry_point, monkeypatch):
    monkeypatch.setenv("HARNESS_BLOCK_PLUGINS", " other , ep-plugin")
    components = load_components()
    assert "ep-plugin" not in components.pm.infos
    assert "ep-attack" not in components.attacks
    assert components.pm.is_blocked("other")


def test_blocked_argument_blocks_entry_point(fake_entry_point):
    components = load_components(blocked=["ep-plugin"])
    assert "ep-plugin" not in components.pm.infos
    assert "ep-attack" not in components.attacks
    assert set(components.pm.infos) == set(BUILTIN_NAMES)


def test_entry_point_colliding_with_directory_plugin(fake_entry_point, plugin_dir):
    folder = plugin_dir(attack_plugin("ep-attack"), name="local")
    with pytest.raises(PluginError, match=r"local.py: attack 'ep-attack' is registered by both "
                                          r"'ep-plugin' and 'local';"):
        load_components([folder])


def test_broken_entry_point_says_how_to_block_it(monkeypatch):
    dist = FakeDistribution("bad-dist", "0.1",
                            f"[{ENTRY_POINT_GROUP}]\nbad = no_such_module_for_harness_tests\n")
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group: [ep for ep in dist.entry_points if ep.group == group])
    with pytest.raises(PluginError) as info:
        build_plugin_manager(autoload=True)
    assert str(info.value) == (
        "entry point 'bad' (no_such_module_for_harness_tests) of group 'robust_harness' failed "
        "to load: ModuleNotFoundError: No module named 'no_such_module_for_harness_tests'; "
        "uninstall it or block it with HARNESS_BLOCK_PLUGINS=bad"
    )
    assert "bad" not in build_plugin_manager(blocked=["bad"]).infos


# --- harness plugins ------------------------------------------------------------------------------


def test_cli_plugins_json_lists_builtins_with_hooks(run_cli, monkeypatch):
    monkeypatch.setenv("HARNESS_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = run_cli("plugins", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows] == BUILTIN_NAMES
    for row in rows:
        assert row["source"] == "builtin"
        assert row["hooks"] == list(CORE_HOOKS.get(row["name"], row["hooks"]))
        assert row["location"].endswith((f"plugins/{row['name']}.py", f"plugins/{row['name']}"))
        assert set(row) == {"name", "source", "location", "version", "hooks", "source_sha256"}
        assert row["source_sha256"] is None  # built-ins go by their version


def test_cli_plugins_json_includes_plugins_dir(run_cli, plugin_dir, monkeypatch):
    monkeypatch.setenv("HARNESS_DISABLE_PLUGIN_AUTOLOAD", "1")
    folder = plugin_dir(attack_plugin(version="0.7"), name="extra_attacks")
    result = run_cli("plugins", "--json", "--plugins-dir", folder)
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["extra_attacks"] == {
        "name": "extra_attacks", "source": "directory",
        "location": str((folder / "extra_attacks.py").resolve()), "version": "0.7",
        "hooks": ["harness_register_attacks"],
        "source_sha256": source_sha256(folder / "extra_attacks.py"),
    }


def test_cli_plugins_reports_plugin_error_without_traceback(run_cli, plugin_dir):
    folder = plugin_dir("raise RuntimeError('nope')\n", name="broken")
    result = run_cli("plugins", "--plugins-dir", folder)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {(folder / 'broken.py').resolve()}: plugin failed to import: RuntimeError: nope\n"
    )
    assert "Traceback" not in result.output
