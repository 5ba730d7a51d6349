"""Models the harness did not train: weights from plain torch (.pt and .safetensors) evaluated
through a catalogue entry, ``harness eval`` and ``harness.benchmark`` give exactly the numbers
of calling torchattacks directly, per example; every weights mistake is one line, exit 2."""

from __future__ import annotations

import hashlib
import sqlite3
import textwrap

import pytest
import torch
import torchattacks
from safetensors.torch import save_file
from torch import nn

import harness
from harness.data import as_tensors
from harness.seeding import seed_everything

MODELS = '''
from torch import nn
from harness import hookimpl


class TinyNet(nn.Module):
    """Takes [0,1] images as they are (no normalization inside)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.head = nn.Linear(8 * 64, 10)

    def forward(self, x):
        return self.head(self.conv(x).relu().flatten(1))


@hookimpl
def harness_register_architectures(registry):
    registry.add("tiny-net", lambda params, info: TinyNet())
'''

ATTACK = {"name": "pgd", "norm": "linf", "eps": 0.1, "params": {"steps": 5, "step_size": 0.025}}
ATTACK_TOML = ('{ name = "pgd", norm = "linf", eps = 0.1, '
               'params = { steps = 5, step_size = 0.025 }, label = "pgd5" }')
EXAMPLES = 96


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A TinyNet trained with plain torch on digits, saved as .pt (in a dict) and .safetensors."""
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("pretrained")
    (root / "my_models.py").write_text(MODELS)
    namespace: dict = {}
    exec(compile(MODELS, "my_models", "exec"), namespace)
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16
    y = torch.tensor(digits.target)
    torch.manual_seed(0)
    model = namespace["TinyNet"]()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(10):
        for i in range(0, len(x), 100):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[i:i + 100]), y[i:i + 100]).backward()
            optimizer.step()
    model.eval()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    torch.save({"epoch": 10, "state_dict": {f"module.{k}": v for k, v in state.items()}},
               root / "tiny.pt")
    save_file(state, str(root / "tiny.safetensors"))
    return root, model


def direct(model: nn.Module, seed: int) -> torch.Tensor:
    """torchattacks called directly: PGD on the clean-correct examples, one batch, seeded."""
    test = harness.load_dataset("digits").test
    x, y = as_tensors(test, EXAMPLES)
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    seed_everything(seed)
    attack = torchattacks.PGD(model, eps=0.1, alpha=0.025, steps=5, random_start=True)
    x_adv = attack(x[correct], y[correct])
    robust = torch.zeros(len(y), dtype=torch.bool)
    with torch.no_grad():
        robust[correct] = model(x_adv).argmax(1) == y[correct]
    return robust


def stored(db_path) -> tuple[torch.Tensor, int, str]:
    with sqlite3.connect(db_path) as db:
        blob, seed = db.execute("SELECT robust, seed FROM eval_cells").fetchone()
        (recipe,) = db.execute("SELECT labels_json FROM train_cells").fetchone()
    return torch.tensor(list(blob), dtype=torch.bool), seed, recipe


def test_a_catalogue_entry_with_weights_is_evaluated_not_trained(trained, run_cli, monkeypatch):
    root, model = trained
    monkeypatch.chdir(root)
    (root / "cat.toml").write_text(textwrap.dedent('''
        [architectures.my-tiny]
        factory = "tiny-net"
        weights = { path = "tiny.pt", key = "state_dict", strip = ["module."] }
    '''))
    (root / "suite.toml").write_text(
        'plugins = ["my_models.py"]\ncatalogues = ["cat.toml"]\ndatasets = ["digits"]\n'
        f'architectures = ["my-tiny"]\nattacks = [{ATTACK_TOML}]\n\n'
        f'[evaluation]\nmax_examples = {EXAMPLES}\n')
    result = run_cli("run", "suite.toml", "--output", "out")
    assert result.exit_code == 0, result.output
    assert "| my-tiny | pretrained |" in result.stdout
    robust, seed, labels = stored(root / "out" / "results.db")
    assert '"recipe": "pretrained"' in labels
    assert torch.equal(robust, direct(model, seed))


def test_harness_eval_and_benchmark_match_torchattacks(trained, run_cli, monkeypatch, tmp_path):
    root, model = trained
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pgd5.toml").write_text(
        '[attacks.pgd5]\nfactory = "pgd"\nnorm = "linf"\neps = 0.1\n'
        'params = { steps = 5, step_size = 0.025 }\n')
    result = run_cli("eval", "tiny-net", "--weights", root / "tiny.safetensors", "--attack",
                     "pgd5", "--max-examples", EXAMPLES, "--output", "out",
                     "--plugins-dir", root / "my_models.py", "--catalogue", "pgd5.toml")
    assert result.exit_code == 0, result.output
    robust, seed, _ = stored(tmp_path / "out" / "results.db")
    assert torch.equal(robust, direct(model, seed))
    again = run_cli("eval", "tiny-net", "--weights", root / "tiny.safetensors", "--attack",
                    "pgd5", "--max-examples", EXAMPLES, "--output", "out",
                    "--plugins-dir", root / "my_models.py", "--catalogue", "pgd5.toml")
    assert "0 cells computed" in again.stdout  # cached like any run

    loaded = harness.load_model("tiny-net", weights=str(root / "tiny.safetensors"),
                                plugins=[root / "my_models.py"])
    result = harness.benchmark(loaded, attacks=[ATTACK], max_examples=EXAMPLES)
    [label] = result.robust
    assert torch.equal(result.outcomes[label], direct(model, result.seeds[label]))
    assert result.examples == EXAMPLES and 0 < result.robust[label] <= result.clean


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(("weights", "message"), [
    ('{ path = "tiny.safetensors", sha256 = "' + "0" * 64 + '" }',
     "suite.toml: architectures[0].weights.sha256: tiny.safetensors has sha256 "),
    ('{ path = "tiny.pt" }',
     "suite.toml: architectures[0].weights: weights file tiny.pt holds"),
    ('{ path = "tiny.pt", key = "model" }',
     "suite.toml: architectures[0].weights: weights file tiny.pt has no entry 'model' (it has: "
     "epoch, state_dict)"),
    ('{ path = "tiny.pt", key = "state_dict" }',
     "suite.toml: architectures[0].weights: weights do not fit the architecture: 4 missing "
     "key(s): conv.weight, conv.bias, head.weight, head.bias; 4 unexpected key(s): "
     'module.conv.weight, module.conv.bias, module.head.weight, module.head.bias; add '
     'strip = ["module."]'),
    ('{ path = "extra.safetensors" }',
     "suite.toml: architectures[0].weights: weights do not fit the architecture: 1 unexpected "
     "key(s): extra.weight"),
    ('{ path = "wide.safetensors" }',
     "suite.toml: architectures[0].weights: weights do not fit the architecture: wrong shape: "
     "head.weight (10, 256) (model (10, 512))"),
    ('{ path = "nowhere.pt" }',
     "suite.toml: architectures[0].weights.path: weights file nowhere.pt does not exist"),
    ('{ url = "http://x/w.pt" }',
     "suite.toml: architectures[0].weights: a url needs its sha256"),
])
def test_a_weights_mistake_is_one_line(trained, run_cli, monkeypatch, weights, message):
    root, model = trained
    monkeypatch.chdir(root)
    state = dict(model.state_dict())
    save_file({**state, "extra.weight": torch.zeros(1)}, str(root / "extra.safetensors"))
    save_file({**state, "head.weight": torch.zeros(10, 256)}, str(root / "wide.safetensors"))
    (root / "suite.toml").write_text(
        'plugins = ["my_models.py"]\ndatasets = ["digits"]\n'
        f'architectures = [{{ name = "tiny-net", weights = {weights} }}]\n'
        'attacks = ["fgsm-linf-0.1"]\n')
    result = run_cli("validate", "suite.toml")
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert result.stderr.count("\n") == 1
    assert result.stderr.removeprefix("error: ").startswith(message), result.stderr


def test_an_unreachable_url_names_the_file_to_place_by_hand(trained, run_cli, monkeypatch,
                                                            tmp_path):
    root, _ = trained
    monkeypatch.chdir(root)
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    digest = sha256(root / "tiny.safetensors")
    (root / "suite.toml").write_text(
        'plugins = ["my_models.py"]\ndatasets = ["digits"]\n'
        f'architectures = [{{ name = "tiny-net", weights = {{ url = '
        f'"http://127.0.0.1:9/tiny.safetensors", sha256 = "{digest}" }} }}]\n'
        'attacks = ["fgsm-linf-0.1"]\n')
    assert run_cli("validate", "suite.toml").exit_code == 0  # nothing fetched to validate
    result = run_cli("run", "suite.toml", "--output", tmp_path / "out")
    assert result.exit_code == 2 and "Traceback" not in result.output
    line = result.stderr.strip().splitlines()[-1]
    expected = tmp_path / "cache" / "weights" / f"{digest[:16]}-tiny.safetensors"
    assert line.startswith("error: cannot download http://127.0.0.1:9/tiny.safetensors (")
    assert line.endswith(f"place it at {expected} (sha256 {digest})")
    expected.parent.mkdir(parents=True, exist_ok=True)
    expected.write_bytes((root / "tiny.safetensors").read_bytes())  # placed by hand
    assert run_cli("run", "suite.toml", "--output", tmp_path / "out").exit_code == 0


def test_weights_of_a_model_a_run_trained(run_cli, tmp_path, monkeypatch):
    """``weights = { run, cell }``: a harness checkpoint, by labels; the same numbers."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.toml").write_text(
        'datasets = ["digits"]\n'
        'architectures = [{ name = "small-cnn", params = { channels = 4, hidden = 16 } }]\n'
        'recipes = [{ name = "standard-digits", epochs = 1 }]\nattacks = ["fgsm-linf-0.1"]\n'
        '[evaluation]\nmax_examples = 64\n')
    assert run_cli("run", "train.toml", "--output", "trained").exit_code == 0
    (tmp_path / "reuse.toml").write_text(
        'datasets = ["digits"]\narchitectures = [{ name = "small-cnn", params = { channels = 4, '
        'hidden = 16 }, weights = { run = "trained", cell = "small-cnn/standard-digits/0" }, '
        'label = "reused" }]\nattacks = ["fgsm-linf-0.1"]\n[evaluation]\nmax_examples = 64\n')
    result = run_cli("run", "reuse.toml", "--output", "reused")
    assert result.exit_code == 0, result.output
    with sqlite3.connect("trained/results.db") as a, sqlite3.connect("reused/results.db") as b:
        query = "SELECT robust FROM eval_cells"
        assert a.execute(query).fetchone() == b.execute(query).fetchone()
    model, data = harness.load_trained("trained", "small-cnn/standard-digits/0")
    assert not model.training and data.info.num_classes == 10


def test_an_architecture_without_weights_or_recipes_is_one_line(run_cli, write_suite):
    path = write_suite('datasets = ["digits"]\narchitectures = ["small-cnn-digits"]\n'
                       'attacks = ["fgsm-linf-0.1"]\n')
    result = run_cli("validate", path)
    assert result.exit_code == 2
    assert "architectures[0]: architecture 'small-cnn-digits' has no weights and the suite " \
           "has no recipe to train it" in result.stderr


def test_a_file_callable_is_an_architecture_with_its_code_hashed(trained, run_cli, monkeypatch):
    """``my_models.py:TinyNet`` needs no plugin: the file's bytes are part of the cell hash."""
    root, model = trained
    monkeypatch.chdir(root)
    (root / "models_file.py").write_text(MODELS.split("@hookimpl")[0])
    (root / "direct.toml").write_text(
        'datasets = ["digits"]\narchitectures = [{ name = "models_file.py:TinyNet", weights = '
        '{ path = "tiny.safetensors" } }]\n'
        f'attacks = [{ATTACK_TOML}]\n[evaluation]\nmax_examples = {EXAMPLES}\n')
    result = run_cli("run", "direct.toml", "--output", "direct")
    assert result.exit_code == 0, result.output
    robust, seed, _ = stored(root / "direct" / "results.db")
    assert torch.equal(robust, direct(model, seed))
    before = run_cli("run", "direct.toml", "--output", "direct", "--dry-run").stdout
    (root / "models_file.py").write_text(MODELS.split("@hookimpl")[0] + "\n# edited\n")
    after = run_cli("run", "direct.toml", "--output", "direct", "--dry-run").stdout
    assert "done" in before and "done" not in after
