"""Golden user-facing messages: one line on stderr, exit status 2, no traceback.

Suites are written to tmp_path and named relative to it (the test chdirs there), so each
message is exactly what a user typing ``harness validate suite.toml`` would read.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

QUICKSTART = Path(__file__).resolve().parents[2] / "suites" / "quickstart.toml"


def available(kind: str) -> int:
    """How many names 'harness list KIND' offers: the catalogue grows, the message format not."""
    from harness.session import load_components

    components = load_components(autoload=False)
    names = set(components.catalogue.names(kind))
    if kind in components.registries:
        names |= set(components.registries[kind].names())
    return len(names)


COUNT = {kind: available(kind) for kind in ("architectures", "attacks", "recipes")}

DATASETS = 'datasets = ["digits"]\n'
ARCHS = 'architectures = ["small-cnn-digits"]\n'
RECIPES = 'recipes = ["standard-digits"]\n'
ATTACKS = 'attacks = ["fgsm-linf-0.1"]\n'
VALID = DATASETS + ARCHS + RECIPES + ATTACKS


@pytest.fixture
def validate(run_cli, tmp_path, monkeypatch):
    """``validate(text, name="suite.toml")``: write the suite and run ``harness validate name``."""
    monkeypatch.chdir(tmp_path)

    def run(text, name="suite.toml"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return run_cli("validate", name)

    return run


def assert_user_error(result, message):
    assert result.stderr == f"error: {message}\n"
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.stdout == ""
    assert "Traceback" not in result.output


def test_valid_suite(validate):
    result = validate(VALID)
    assert result.exit_code == 0, result.output
    assert result.stdout == "suite.toml: ok — 1 train cell, 1 eval cell\n"
    assert result.stderr == ""


GOLDEN = {
    "misspelled top-level key": (
        VALID + "seedz = [1]\n",
        "suite.toml: seedz: unknown key 'seedz'. Did you mean: seeds? Allowed keys: name, "
        "description, plugins, catalogues, seeds, device, datasets, architectures, recipes, "
        "attacks, metrics, evaluation.",
    ),
    "misspelled key in a table": (
        VALID + "[evaluation]\nmax_example = 5\n",
        "suite.toml: evaluation.max_example: unknown key 'max_example'. Did you mean: "
        "max_examples? Allowed keys: max_examples, batch_size, mode, amp, channels_last, compile, "
        "fp32_check, fp32_tolerance.",
    ),
    "missing required key": (
        DATASETS + RECIPES,
        "suite.toml: architectures: required key is missing; add it",
    ),
    "unknown architecture": (
        DATASETS + 'architectures = ["small-cnn-digit"]\n' + RECIPES,
        "suite.toml: architectures[0].name: unknown architecture 'small-cnn-digit'. Did you mean: "
        f"small-cnn-digits, small-cnn, alexnet-digits? Run 'harness list architectures' "
        f"({COUNT['architectures']} available).",
    ),
    "unknown attack": (
        DATASETS + ARCHS + RECIPES + 'attacks = ["fgsm-linf-0.1", "pgd20-linf-0.11"]\n',
        "suite.toml: attacks[1].name: unknown attack 'pgd20-linf-0.11'. Did you mean: "
        f"pgd20-linf-0.1, pgd20-linf-0.2, pgd20-linf-0.1-art? Run 'harness list attacks' "
        f"({COUNT['attacks']} available).",
    ),
    "unknown recipe": (
        DATASETS + ARCHS + 'recipes = ["standard-digit"]\n',
        "suite.toml: recipes[0].name: unknown recipe 'standard-digit'. Did you mean: "
        f"standard-digits, standard-cifar, trades-digits? Run 'harness list recipes' "
        f"({COUNT['recipes']} available).",
    ),
    "wrong type in params": (
        DATASETS + 'architectures = [{ name = "small-cnn", params = { channels = "wide" } }]\n'
        + RECIPES,
        "suite.toml: architectures[0].params.channels: Input should be a valid integer, unable "
        "to parse string as an integer (got 'wide')",
    ),
    "misspelled key in inline attack params": (
        DATASETS + ARCHS + RECIPES + 'attacks = [{ name = "pgd", eps = 0.1, params = { step = 5 } }]\n',
        "suite.toml: attacks[0].params.step: unknown key 'step'. Did you mean: steps? Allowed "
        "keys: targeted, random_start, steps, step_size, loss, kappa.",
    ),
    "misspelled attack key": (
        DATASETS + ARCHS + RECIPES + 'attacks = [{ name = "pgd", epss = 0.1 }]\n',
        "suite.toml: attacks[0].epss: unknown key 'epss'. Did you mean: eps? Allowed keys: "
        "name, params, label, norm, eps.",
    ),
    "misspelled recipe key": (
        DATASETS + ARCHS + 'recipes = [{ name = "standard-digits", epoch = 2 }]\n',
        "suite.toml: recipes[0].epoch: unknown key 'epoch'. Did you mean: epochs? Allowed keys: "
        "description, defense, defense_params, attack, epochs, batch_size, optimizer, lr, "
        "momentum, nesterov, betas, weight_decay, schedule, milestones, gamma, warmup_epochs, "
        "min_lr, cycle_peak, grad_clip, ema, augment, crop_padding, validation, checkpoint, "
        "attack_bn, amp, channels_last, compile.",
    ),
    "linf eps in pixel units": (
        DATASETS + ARCHS + RECIPES + 'attacks = [{ name = "pgd", eps = 8 }]\n',
        "suite.toml: attacks[0].eps: eps = 8 exceeds the whole [0,1] pixel range of a linf "
        "attack; write it in [0,1] units, e.g. \"8/255\" (dataset 'digits')",
    ),
    "training attack eps in pixel units": (
        DATASETS + ARCHS
        + 'recipes = [{ name = "r", defense = "pgd-at", epochs = 1, attack = { name = "pgd", eps = 8 } }]\n',
        "suite.toml: recipes[0].attack.eps: eps = 8 exceeds the whole [0,1] pixel range of a "
        "linf attack; write it in [0,1] units, e.g. \"8/255\" (dataset 'digits')",
    ),
    "negative eps": (
        DATASETS + ARCHS + RECIPES + 'attacks = [{ name = "pgd", eps = -0.1 }]\n',
        "suite.toml: attacks[0].eps: eps must be >= 0, got -0.1",
    ),
    "eps list with a negative entry": (
        DATASETS + ARCHS + RECIPES + 'attacks = [{ name = "pgd", eps = [0.05, -0.1] }]\n',
        "suite.toml: attacks[0].eps: eps must be >= 0, got -0.1",
    ),
    "eps list with a pixel-unit entry": (
        DATASETS + ARCHS + RECIPES + 'attacks = [{ name = "pgd", eps = [0.05, 8] }]\n',
        "suite.toml: attacks[0].eps: eps = 8 exceeds the whole [0,1] pixel range of a linf "
        "attack; write it in [0,1] units, e.g. \"8/255\" (dataset 'digits')",
    ),
    "empty eps list": (
        DATASETS + ARCHS + RECIPES + 'attacks = [{ name = "pgd", eps = [] }]\n',
        "suite.toml: attacks[0].eps: eps list is empty; give at least one value",
    ),
    "eps fraction dividing by zero": (
        DATASETS + ARCHS + RECIPES + 'attacks = [{ name = "pgd", eps = "8/0" }]\n',
        "suite.toml: attacks[0].eps: eps '8/0' is not a number or a fraction such as \"8/255\"",
    ),
    "eps missing": (
        DATASETS + ARCHS + RECIPES + 'attacks = [{ name = "pgd" }]\n',
        "suite.toml: attacks[0].eps: attack 'pgd' needs a budget; add eps = ...",
    ),
    "norm the attack does not support": (
        DATASETS + ARCHS + RECIPES + 'attacks = [{ name = "pgd", norm = "l2", eps = 0.5 }]\n',
        "suite.toml: attacks[0].norm: attack 'pgd' supports linf, not 'l2'",
    ),
    "pgd-at without attack": (
        DATASETS + ARCHS + 'recipes = [{ name = "my-at", defense = "pgd-at", epochs = 1 }]\n',
        "suite.toml: recipes[0].attack: defense 'pgd-at' trains against an attack; add attack = "
        "{ name = \"pgd\", norm = \"linf\", eps = 0.1, params = { steps = 7 } }",
    ),
    "training attack for standard training": (
        DATASETS + ARCHS + 'recipes = [{ name = "standard-digits", attack = "pgd20-linf-0.1" }]\n',
        "suite.toml: recipes[0].attack: defense 'standard' does not use a training attack; "
        "remove attack",
    ),
    "duplicate attack labels": (
        DATASETS + ARCHS + RECIPES + 'attacks = ["fgsm-linf-0.1", "fgsm-linf-0.1"]\n',
        "suite.toml: attacks[1]: label 'fgsm-linf-0.1' is used twice (also at index 0); give one "
        "of them label = \"...\"",
    ),
    "duplicate architecture labels": (
        DATASETS + 'architectures = ["small-cnn-digits", { name = "small-cnn", label = '
        '"small-cnn-digits" }]\n' + RECIPES,
        "suite.toml: architectures[1]: label 'small-cnn-digits' is used twice (also at index 0); "
        "give one of them label = \"...\"",
    ),
    "TOML syntax error": (
        'datasets = ["digits"\narchitectures = ["small-cnn-digits"]\n',
        "suite.toml: not valid TOML: Unclosed array (at line 2, column 1); fix the syntax at "
        "that line",
    ),
    "attack that needs at most 3 channels": (
        'datasets = [{ name = "synthetic", params = { channels = 4 } }]\n' + ARCHS + RECIPES
        + 'attacks = [{ name = "tifgsm", eps = 0.1 }]\n',
        "suite.toml: attacks[0]: tifgsm: torchattacks hard-codes 3 input channels (its depthwise "
        "kernels); inputs with 4 are not supported (dataset 'synthetic' has inputs of shape "
        "(4, 8, 8) and 4 classes)",
    ),
    "autoattack with fewer classes than APGD-T targets": (
        'datasets = [{ name = "synthetic", params = { num_classes = 3 } }]\n' + ARCHS + RECIPES
        + 'attacks = ["fgsm-linf-0.1", { name = "autoattack", norm = "linf", eps = 0.1 }]\n',
        "suite.toml: attacks[1]: autoattack: apgd-t need(s) a model with at least 4 classes, not "
        "3. Use version = \"custom\" without them (dataset 'synthetic' has inputs of shape "
        "(1, 8, 8) and 3 classes)",
    ),
    "training attack with too few classes": (
        'datasets = [{ name = "synthetic", params = { num_classes = 3 } }]\n' + ARCHS
        + 'recipes = [{ name = "pgd-at-linf-0.1-digits", attack = { name = "apgdt", '
        'norm = "linf", eps = 0.1 } }]\n',
        "suite.toml: recipes[0].attack: apgdt needs a model with at least 4 classes, not 3 "
        "(dataset 'synthetic' has inputs of shape (1, 8, 8) and 3 classes)",
    ),
    "attack parameters its factory rejects": (
        DATASETS + ARCHS + RECIPES
        + 'attacks = [{ name = "autoattack", norm = "l1", eps = 5, params = { n_iter = 2 } }]\n',
        "suite.toml: attacks[0]: autoattack: the standard version at l1 runs APGD in 3 eps "
        "stages and needs n_iter >= 3, got 2",
    ),
    "validation attack eps in pixel units": (
        DATASETS + ARCHS + ATTACKS + 'recipes = [{ name = "standard-digits", validation = '
        '{ attack = { name = "pgd", eps = 8 } } }]\n',
        "suite.toml: recipes[0].validation.attack.eps: eps = 8 exceeds the whole [0,1] pixel "
        "range of a linf attack; write it in [0,1] units, e.g. \"8/255\" (dataset 'digits')",
    ),
    "defense that rejects its training attack": (
        DATASETS + ARCHS + ATTACKS + 'recipes = [{ name = "fast", defense = "fast-at", epochs = 1, '
        'attack = { name = "pgdl2", norm = "l2", eps = 1.0 } }]\n',
        "suite.toml: recipes[0]: defense 'fast-at' is defined for linf only (signed-gradient "
        "steps clipped to a box), but the recipe's attack is l2 eps=1; use norm = \"linf\", or "
        "pgd-at/trades/mart/alp for other norms",
    ),
    "bad device": (
        VALID + 'device = "gpu"\n',
        "suite.toml: device: device 'gpu' is not one of auto, cpu, mps, cuda, cuda:N",
    ),
}


@pytest.mark.parametrize(("text", "message"), GOLDEN.values(), ids=GOLDEN.keys())
def test_golden_error(validate, text, message):
    assert_user_error(validate(text), message)


def test_missing_suite_file(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_user_error(run_cli("validate", "nope.toml"),
                      "nope.toml: suite file not found; check the path")


def test_suite_path_is_a_directory(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "suites").mkdir()
    assert_user_error(run_cli("validate", "suites"), "suites: is a folder; give the path of a suite file")


def test_unknown_plugin_directory_is_relative_to_suite(validate):
    result = validate('plugins = ["no_such_dir"]\n' + VALID, name="exp/suite.toml")
    assert_user_error(result, "exp/suite.toml: plugins[0]: plugin folder or file exp/no_such_dir "
                              "does not exist; paths are relative to the suite file")


def test_suite_plugin_directory_is_loaded(validate, tmp_path):
    (tmp_path / "exp" / "mine").mkdir(parents=True)
    (tmp_path / "exp" / "mine" / "my_attack.py").write_text(
        "from harness import hookimpl\n\n\n"
        "@hookimpl\n"
        "def harness_register_attacks(registry):\n"
        "    registry.add('noop', lambda params, threat: (lambda m, x, y: x))\n"
    )
    attacks = 'attacks = [{ name = "noop", eps = 0.1 }, { name = "nop", eps = 0.1 }]\n'
    result = validate('plugins = ["mine"]\n' + DATASETS + ARCHS + RECIPES + attacks,
                      name="exp/suite.toml")
    assert_user_error(result, "exp/suite.toml: attacks[1].name: unknown attack 'nop'. Did you "
                              f"mean: noop? Run 'harness list attacks' ({COUNT['attacks'] + 1} "
                              "available).")


QUESTION = """
[[study]]
suite = "{suite}"
study = "A study"
paper = "A paper"
claim = "A claim"
metric = "params"
recipe = "standard-digits"
target = "fgsm-linf-0.1"
expect = "negative"
"""


def test_questions_file_is_checked_as_one(run_cli, tmp_path, monkeypatch):
    """A study-questions file given to validate is recognised; each study must name a suite of
    its folder, or 'harness analyze --questions' could never answer it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pilots").mkdir()
    (tmp_path / "pilots" / "suite.toml").write_text('name = "here"\n' + VALID)
    (tmp_path / "pilots" / "questions.toml").write_text(QUESTION.format(suite="here"))
    result = run_cli("validate", "pilots/questions.toml")
    assert result.exit_code == 0, result.output
    assert result.stdout == ("pilots/questions.toml: ok — a questions file for 'harness analyze "
                             "--questions' (1 question, each naming a suite beside it)\n")
    (tmp_path / "pilots" / "questions.toml").write_text(QUESTION.format(suite="there"))
    assert_user_error(run_cli("validate", "pilots/questions.toml"),
                      "pilots/questions.toml: study[0].suite: no suite named 'there' in pilots; "
                      "suites there: here")


@pytest.mark.parametrize("command", [["run"], ["run", "--dry-run"], ["crosscheck"]])
def test_a_questions_file_given_as_a_suite_is_named_as_one(run_cli, tmp_path, monkeypatch,
                                                           command):
    """'harness run suites/pilots/questions.toml' says what the file is for instead of failing
    on its 'study' key (crosscheck also takes a SUITE, before its attack names)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "questions.toml").write_text(QUESTION.format(suite="here"))
    extra = ["fgsm-linf-0.1", "pgd20-linf-0.1"] if command == ["crosscheck"] else []
    assert_user_error(run_cli(*command, "questions.toml", *extra),
                      "questions.toml: a questions file for 'harness analyze --questions', not a "
                      "suite; run the suites it names, then harness analyze RUN_DIR... "
                      "--questions questions.toml")


def test_validate_checks_every_file_and_says_each_error(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.toml").write_text(VALID)
    (tmp_path / "bad.toml").write_text(VALID + "seedz = [1]\n")
    result = run_cli("validate", "bad.toml", "good.toml", "nope.toml")
    assert result.exit_code == 2
    assert result.stdout == "good.toml: ok — 1 train cell, 1 eval cell\n"
    errors = result.stderr.splitlines()
    assert len(errors) == 2 and "Traceback" not in result.output
    assert errors[0].startswith("error: bad.toml: seedz: unknown key 'seedz'")
    assert errors[1] == "error: nope.toml: suite file not found; check the path"


def test_validate_warns_once_about_an_unmatched_block_name(run_cli, tmp_path, monkeypatch):
    """Each file loads the plugins again; the likely typo in --block-plugin is one warning."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.toml").write_text(VALID)
    (tmp_path / "b.toml").write_text(VALID)
    result = run_cli("validate", "a.toml", "b.toml", "--block-plugin", "nosuch")
    assert result.exit_code == 0, result.output
    assert result.stdout == ("a.toml: ok — 1 train cell, 1 eval cell\n"
                             "b.toml: ok — 1 train cell, 1 eval cell\n")
    assert result.stderr == ("warning: blocked plugin 'nosuch' matched no plugin; check the name "
                             "('harness plugins' lists them)\n")


# --- engine bugs: each test states what should happen ------------------------------------------------


def test_unknown_defense(validate):
    result = validate(DATASETS + ARCHS + 'recipes = [{ name = "r", defense = "pgd-att", epochs = 1 }]\n')
    assert result.exit_code == 2
    assert "suite.toml: recipes[0].defense: unknown defense 'pgd-att'. Did you mean: pgd-at?" \
        in result.stderr


@pytest.mark.parametrize(("extra", "key"), [
    ('Seeds = [1]\n', "Seeds"),
    ('str = 1\n', "str"),
    ('attacks = [{ name = "pgd", eps = 0.1, params = { Steps = 5 } }]\n', "Steps"),
])
def test_unknown_key_that_looks_like_a_type_name(validate, extra, key):
    result = validate(DATASETS + ARCHS + RECIPES + extra)
    assert result.exit_code == 2
    assert f"unknown key {key!r}" in result.stderr


def test_eps_list_with_a_bad_string_entry(validate):
    result = validate(DATASETS + ARCHS + RECIPES + 'attacks = [{ name = "pgd", eps = [0.05, "abc"] }]\n')
    assert result.exit_code == 2
    assert result.stderr.startswith("error: suite.toml: attacks[0].eps[1]: ")
    assert "'abc'" in result.stderr
    assert "[0.05" not in result.stderr


def test_duplicate_label_index_after_eps_list(validate):
    attacks = 'attacks = [{ name = "pgd", eps = [0.05, 0.1] }, "fgsm-linf-0.1", "fgsm-linf-0.1"]\n'
    result = validate(DATASETS + ARCHS + RECIPES + attacks)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: suite.toml: attacks[2]: label 'fgsm-linf-0.1' is used twice")
    assert "index 1" in result.stderr


# --- the real command line ---------------------------------------------------------------------------


def test_console_script_prints_one_line_and_no_traceback(tmp_path):
    (tmp_path / "suite.toml").write_text(VALID + "seedz = [1]\n")
    harness = Path(sys.executable).with_name("harness")
    proc = subprocess.run([str(harness), "validate", "suite.toml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: suite.toml: seedz: unknown key 'seedz'. Did you mean: seeds?")
    assert proc.stderr.count("\n") == 1


def test_dry_run_quickstart_prints_4_train_and_16_eval_cells(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no runs/quickstart/results.db here: every cell is "todo"
    result = run_cli("run", QUICKSTART, "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    train = [line for line in lines if re.fullmatch(r"[0-9a-f]{16}  todo  train .*", line)]
    evals = [line for line in lines if re.fullmatch(r"  [0-9a-f]{16}  todo  \S+ \(.*\)", line)]
    assert len(train) == 4
    assert len(evals) == 16
    assert lines[-1] == "4 train cells, 16 eval cells"
    assert len(lines) == 4 + 16 + 1
    assert train[0].endswith("  todo  train digits / small-cnn-digits / standard-digits / seed 0")
    assert [line.split("  ")[-1] for line in evals[:4]] == [
        "fgsm-linf-0.1 (linf eps=0.1)", "pgd20-linf-0.1 (linf eps=0.1)",
        "pgd20-linf-0.2 (linf eps=0.2)", "pgd20-l2-1.0 (l2 eps=1)"]
    assert not (tmp_path / "runs").exists(), "a dry run must not create the output folder"
