import itertools
import json
import os
import subprocess
import sys

import pytest

from harness.cells import stable_hash
from harness.errors import UserError
from harness.plan import build_plan
from harness.session import load_components
from harness.suite import load_suite

BASE = {
    "seeds": "[0]",
    "datasets": '["digits"]',
    "architectures": '["small-cnn-digits"]',
    "recipes": '["pgd-at-linf-0.1-digits"]',
    "attacks": '["pgd20-linf-0.1"]',
}


def suite_text(**overrides):
    """BASE with some top-level keys replaced; values are TOML source (inline tables allowed)."""
    keys = {**BASE, **overrides}
    return "".join(f"{key} = {value}\n" for key, value in keys.items() if value is not None)


@pytest.fixture
def plan_of(components, write_suite):
    """Build the plan of a suite; each call writes a new file (so the suite names differ)."""
    counter = itertools.count()

    def build(**overrides):
        path = write_suite(suite_text(**overrides), name=f"suite{next(counter)}.toml")
        return build_plan(components, load_suite(path))

    return build


def hashes(plan):
    return [c.hash for c in plan.train_cells], [e.hash for e in plan.eval_cells]


def test_stable_hash_ignores_key_order():
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})
    assert len(stable_hash({})) == 16


def test_hashes_stable_across_two_builds(plan_of):
    first, second = plan_of(), plan_of()
    assert hashes(first) == hashes(second)
    train, evals = hashes(first)
    assert len(train) == 1 and len(evals) == 1
    assert all(len(h) == 16 and int(h, 16) >= 0 for h in train + evals)
    assert train[0] != evals[0]


def test_hashes_stable_across_processes(components, write_suite, tmp_path):
    """The store resumes by hash in a later process: no id(), set order or time may leak in."""
    path = write_suite(suite_text(seeds="[0, 1]", attacks='["fgsm-linf-0.1", "pgd20-l2-1.0"]'))
    here = hashes(build_plan(components, load_suite(path)))
    script = (
        "import json, sys\n"
        "from harness.session import load_components\n"
        "from harness.plan import build_plan\n"
        "from harness.suite import load_suite\n"
        "plan = build_plan(load_components(autoload=False), load_suite(sys.argv[1]))\n"
        "print(json.dumps([[c.hash for c in plan.train_cells], [e.hash for e in plan.eval_cells]]))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True,
                         check=True, cwd=tmp_path, env={**os.environ, "PYTHONHASHSEED": "123"})
    assert json.loads(out.stdout) == [list(here[0]), list(here[1])]


TRAIN_CHANGES = {
    "architecture param": {"architectures": '[{ name = "small-cnn-digits", params = { channels = 16 } }]'},
    "architecture": {"architectures": '["resnet18-digits"]'},
    "seed": {"seeds": "[1]"},
    "dataset param": {"datasets": '[{ name = "digits", params = { split_seed = 1 } }]'},
    "recipe setting": {"recipes": '[{ name = "pgd-at-linf-0.1-digits", epochs = 2 }]'},
    "recipe preset": {"recipes": '["standard-digits"]'},
    "training attack eps": {"recipes": '[{ name = "pgd-at-linf-0.1-digits", attack = { name = "pgd", '
                                       'eps = 0.05, params = { steps = 5, step_size = "eps/2" } } }]'},
    "training attack param": {"recipes": '[{ name = "pgd-at-linf-0.1-digits", attack = { name = "pgd", '
                                         'eps = 0.1, params = { steps = 6, step_size = "eps/2" } } }]'},
}


@pytest.mark.parametrize("change", TRAIN_CHANGES.values(), ids=TRAIN_CHANGES.keys())
def test_training_change_changes_train_and_eval_hashes(plan_of, change):
    (train0,), (eval0,) = hashes(plan_of())
    (train1,), (eval1,) = hashes(plan_of(**change))
    assert train1 != train0
    assert eval1 != eval0


EVAL_CHANGES = {
    "attack eps": {"attacks": '[{ name = "pgd20-linf-0.1", eps = 0.05 }]'},
    "attack param": {"attacks": '[{ name = "pgd20-linf-0.1", params = { steps = 10 } }]'},
    "attack random start": {"attacks": '[{ name = "pgd20-linf-0.1", params = { random_start = false } }]'},
    "attack preset": {"attacks": '["pgd20-linf-0.2"]'},
    "attack norm": {"attacks": '["pgd20-l2-1.0"]'},
    "max_examples": {"evaluation": "{ max_examples = 50 }"},
    "eval batch size": {"evaluation": "{ batch_size = 100 }"},
}


@pytest.mark.parametrize("change", EVAL_CHANGES.values(), ids=EVAL_CHANGES.keys())
def test_evaluation_change_changes_only_eval_hash(plan_of, change):
    (train0,), (eval0,) = hashes(plan_of())
    (train1,), (eval1,) = hashes(plan_of(**change))
    assert train1 == train0
    assert eval1 != eval0


INLINE_RECIPE = (
    '[{ name = "my-at", defense = "pgd-at", epochs = 8, batch_size = 64, lr = 0.05, '
    'weight_decay = 5e-4, milestones = [6], '
    'attack = { name = "pgd", norm = "linf", eps = 0.1, params = { steps = 5, step_size = "eps/2" } } }]'
)
SAME_CELLS = {
    "labels": {
        "datasets": '[{ name = "digits", label = "d" }]',
        "architectures": '[{ name = "small-cnn-digits", label = "cnn" }]',
        "recipes": '[{ name = "pgd-at-linf-0.1-digits", label = "at" }]',
        "attacks": '[{ name = "pgd20-linf-0.1", label = "pgd" }]',
    },
    "suite name and description": {"name": '"renamed"', "description": '"other words"'},
    "device": {"device": '"cpu"'},
    "inline architecture equal to preset": {
        "architectures": '[{ name = "small-cnn", params = { channels = 32, hidden = 128 } }]'},
    "inline attack equal to preset": {
        "attacks": '[{ name = "pgd", norm = "linf", eps = 0.1, '
                   'params = { steps = 20, step_size = "eps/8" } }]'},
    "inline recipe equal to preset": {"recipes": INLINE_RECIPE},
    "defaults written out": {
        "attacks": '[{ name = "pgd20-linf-0.1", norm = "linf", params = { random_start = true } }]',
        "datasets": '[{ name = "digits", params = { test_fraction = 0.2, split_seed = 0 } }]'},
    "eps as a fraction": {"attacks": '[{ name = "pgd20-linf-0.1", eps = "1/10" }]'},
    "single-value eps list": {"attacks": '[{ name = "pgd20-linf-0.1", eps = [0.1] }]'},
}


@pytest.mark.parametrize("change", SAME_CELLS.values(), ids=SAME_CELLS.keys())
def test_presentation_change_keeps_hashes(plan_of, change):
    """Hashes cover the resolved configuration, not how it was written or labelled."""
    assert hashes(plan_of(**change)) == hashes(plan_of())


def test_labels_change_what_is_shown_but_not_hashes(plan_of):
    plan = plan_of(**SAME_CELLS["labels"])
    assert plan.train_cells[0].labels == {"dataset": "d", "architecture": "cnn", "recipe": "at",
                                          "seed": 0}
    assert plan.attack_labels == ["pgd"]
    assert plan.train_cells[0].describe() == "train d / cnn / at / seed 0"
    assert plan.eval_cells[0].describe() == "attack pgd on d / cnn / at / seed 0"


def test_adding_axes_keeps_existing_hashes(plan_of):
    train0, evals0 = hashes(plan_of())
    train1, evals1 = hashes(plan_of(
        seeds="[1, 0]",
        architectures='["resnet18-digits", "small-cnn-digits"]',
        attacks='["fgsm-linf-0.1", "pgd20-linf-0.1"]',
    ))
    assert len(train1) == 4 and len(evals1) == 8
    assert set(train0) < set(train1)
    assert set(evals0) < set(evals1)
    assert len(set(train1)) == 4 and len(set(evals1)) == 8


# --- eps lists --------------------------------------------------------------------------------------


def test_eps_list_expands_into_labelled_attacks(plan_of):
    plan = plan_of(attacks='[{ name = "pgd", eps = [0.05, 0.1] }, "fgsm-linf-0.1"]')
    assert plan.attack_labels == ["pgd@0.05", "pgd@0.1", "fgsm-linf-0.1"]
    attacks = [e.attack for e in plan.eval_cells]
    assert [(a.threat.norm, a.threat.eps) for a in attacks] == [
        ("linf", 0.05), ("linf", 0.1), ("linf", 0.1)]
    assert attacks[0].params == attacks[1].params  # same attack, two budgets
    assert len({e.hash for e in plan.eval_cells}) == 3


def test_eps_list_uses_label_and_preset(plan_of):
    plan = plan_of(attacks='[{ name = "pgd20-linf-0.1", eps = ["4/255", "8/255"], label = "PGD" }]')
    assert plan.attack_labels == ["PGD@0.0156863", "PGD@0.0313725"]
    first = plan.eval_cells[0].attack
    assert first.factory == "pgd"
    assert first.params["steps"] == 20
    assert first.threat.eps == pytest.approx(4 / 255)


def test_eps_list_entry_equals_single_eps_cell(plan_of):
    """A curve's point and the same attack given alone are one cell (computed once)."""
    curve = plan_of(attacks='[{ name = "pgd20-linf-0.1", eps = [0.05, 0.1] }]')
    single = plan_of()
    assert curve.eval_cells[1].hash == single.eval_cells[0].hash


# --- presets merged with inline overrides ----------------------------------------------------------


def test_attack_preset_params_merge_with_inline(plan_of):
    attack = plan_of(attacks='[{ name = "pgd20-linf-0.1", params = { steps = 5 } }]').eval_cells[0].attack
    assert attack.label == "pgd20-linf-0.1"
    assert attack.factory == "pgd"
    assert attack.plugin == "torchattacks_attacks"
    assert attack.params | {"steps": 5, "step_size": {"value": 0.125, "relative": True},
                            "random_start": True} == attack.params
    assert (attack.threat.norm, attack.threat.eps) == ("linf", 0.1)


def test_attack_preset_eps_override(plan_of):
    attack = plan_of(attacks='[{ name = "pgd20-linf-0.1", eps = 0.2 }]').eval_cells[0].attack
    assert attack.threat.eps == 0.2
    assert attack.params["steps"] == 20


def test_inline_step_size_replaces_the_presets_relative_step(plan_of):
    attack = plan_of(attacks='[{ name = "pgd20-linf-0.1", params = { step_size = "1/255" } }]'
                     ).eval_cells[0].attack
    assert attack.params["step_size"] == {"value": 1 / 255, "relative": False}
    assert attack.params["steps"] == 20


def test_architecture_preset_params_merge_with_inline(plan_of):
    plan = plan_of(architectures='[{ name = "small-cnn-digits", params = { hidden = 64 } }]')
    arch = plan.train_cells[0].architecture
    assert (arch.factory, arch.label, arch.plugin) == ("small-cnn", "small-cnn-digits", "cnns")
    assert arch.params == {"channels": 32, "hidden": 64}


def test_recipe_preset_merges_with_inline_settings(plan_of):
    recipe = plan_of(recipes='[{ name = "pgd-at-linf-0.1-digits", epochs = 1, lr = 0.01 }]'
                     ).train_cells[0].recipe
    assert recipe.label == "pgd-at-linf-0.1-digits"
    assert (recipe.recipe.epochs, recipe.recipe.lr) == (1, 0.01)
    assert (recipe.recipe.batch_size, recipe.recipe.milestones) == (64, [6])  # from the preset
    assert recipe.defense.factory == "pgd-at"
    assert recipe.attack.params | {"steps": 5, "step_size": {"value": 0.5, "relative": True},
                                   "random_start": True} == recipe.attack.params
    assert recipe.attack.threat.eps == 0.1


def test_recipe_training_attack_may_be_a_preset_name(plan_of):
    recipe = plan_of(recipes='[{ name = "r", defense = "pgd-at", epochs = 1, attack = "pgd20-linf-0.2" }]'
                     ).train_cells[0].recipe
    assert recipe.attack.params["steps"] == 20
    assert (recipe.attack.threat.norm, recipe.attack.threat.eps) == ("linf", 0.2)


# --- the matrix --------------------------------------------------------------------------------------


def test_eval_cells_are_train_cells_times_attacks(plan_of):
    plan = plan_of(
        seeds="[0, 1]",
        architectures='["small-cnn-digits", "resnet18-digits"]',
        recipes='["standard-digits", "pgd-at-linf-0.1-digits"]',
        attacks='["fgsm-linf-0.1", { name = "pgd", eps = [0.05, 0.1] }, "pgd20-l2-1.0"]',
    )
    assert len(plan.train_cells) == 2 * 2 * 2
    assert len(plan.eval_cells) == 8 * 4
    assert [c.describe() for c in plan.train_cells[:3]] == [
        "train digits / small-cnn-digits / standard-digits / seed 0",
        "train digits / small-cnn-digits / standard-digits / seed 1",
        "train digits / small-cnn-digits / pgd-at-linf-0.1-digits / seed 0",
    ]
    for cell in plan.train_cells:
        evals = plan.evals_of(cell)
        assert [e.attack.label for e in evals] == plan.attack_labels
        assert all(e.train is cell for e in evals)
    assert len({c.hash for c in plan.train_cells}) == 8
    assert len({e.hash for e in plan.eval_cells}) == 32


def test_no_attacks_means_no_eval_cells(plan_of):
    plan = plan_of(attacks=None)
    assert len(plan.train_cells) == 1
    assert plan.eval_cells == []
    assert plan.attack_labels == []


def test_duplicate_seeds_do_not_duplicate_cells(plan_of):
    try:
        plan = plan_of(seeds="[0, 0]")
    except UserError:
        return  # rejecting the suite is a fine answer too
    assert len({c.hash for c in plan.train_cells}) == len(plan.train_cells)
    assert all(len(plan.evals_of(c)) == 1 for c in plan.train_cells)


def test_budget_unit_uses_dataset_params_shape(plan_of):
    """synthetic's shape comes from its params: 1×2×2 has l2 diameter 2."""
    ok = plan_of(datasets='[{ name = "synthetic", params = { size = 8 } }]',
                 attacks='[{ name = "pgdl2", eps = 2.5 }]')
    assert ok.eval_cells[0].attack.threat.eps == 2.5
    with pytest.raises(UserError, match=r"attacks\[0\]\.eps: eps = 2\.5 exceeds the l2 diameter of "
                                        r"the \[0,1\] input space \(2 for inputs of shape \(1, 2, 2\)\) "
                                        r"\(dataset 'synthetic'\)$"):
        plan_of(datasets='[{ name = "synthetic", params = { size = 2 } }]',
                attacks='[{ name = "pgdl2", eps = 2.5 }]')


def test_local_file_params_of_attacks_and_defenses_are_hashed(tmp_path, plugin_dir, write_suite):
    """Any component's LocalFile param, not only architectures': a changed file, a new cell."""
    plugin_dir('''
        import torch.nn.functional as F
        from harness import LocalFile, Params, hookimpl


        class FileParams(Params):
            table: LocalFile | None = None


        class Clean:
            def loss(self, model, x, y):
                return F.cross_entropy(model(x), y)


        @hookimpl
        def harness_register_attacks(registry):
            registry.add("file-noop", lambda params, threat: lambda model, x, y: x.clone(),
                         params=FileParams)


        @hookimpl
        def harness_register_defenses(registry):
            registry.add("file-clean", lambda params, attack: Clean(), params=FileParams)
        ''', name="file_plugin")
    attack_file, defense_file = tmp_path / "attack.bin", tmp_path / "defense.bin"
    suite = write_suite(f"""
        datasets = ["digits"]
        architectures = ["small-cnn-digits"]
        attacks = [{{ name = "file-noop", eps = 0.1, params = {{ table = "{attack_file}" }} }}]

        [[recipes]]
        name = "r"
        defense = "file-clean"
        epochs = 1
        defense_params = {{ table = "{defense_file}" }}
        """)

    components = load_components([tmp_path / "plugins"], autoload=False)

    def hashes_with(attack: bytes, defense: bytes):
        attack_file.write_bytes(attack)
        defense_file.write_bytes(defense)
        return hashes(build_plan(components, load_suite(suite)))

    first = hashes_with(b"a", b"d")
    assert hashes_with(b"a", b"d") == first
    train, evals = hashes_with(b"A", b"d")
    assert train == first[0] and evals != first[1]
    train, _ = hashes_with(b"A", b"D")
    assert train != first[0]
