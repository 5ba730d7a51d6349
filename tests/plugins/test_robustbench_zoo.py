"""The RobustBench zoo plugin (plugins/robustbench_zoo/), with the robustbench extra installed.

No test reaches a network: weights are made here (RobustBench's architecture with random
weights, saved where ``load_model`` reads them) and every socket connection is refused.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import socket
import subprocess
import sys

import pytest
import torch

from harness import DataInfo, ThreatModel, UserError
from harness.files import local_file_digests
from harness.guard import GuardedAttack


def _installed() -> bool:
    try:
        return bool(importlib.metadata.version("robustbench"))
    except importlib.metadata.PackageNotFoundError:
        return False


pytestmark = pytest.mark.skipif(
    not _installed(),
    reason='the robustbench extra is not installed (pip install -e ".[robustbench]")')

#: The smallest single-file CIFAR-10 Linf entry: a WideResNet-28-4, 5.8M parameters.
NAME = "rb:cifar10:Linf:Ding2020MMA"
GDRIVE_ID = "19Q_rIIHXsYzxZ0WcZdqT-N2OD7MfgoZ0"  # robustbench 1.1.1's model_zoo/cifar10.py
CIFAR10 = DataInfo((3, 32, 32), 10, (0.5,) * 3, (0.25,) * 3)


@pytest.fixture(scope="module")
def plugin(components):
    return components.pm.get_plugin("robustbench_zoo")


@pytest.fixture
def offline(monkeypatch):
    """Any connection attempt fails, as on a machine without a network."""
    def refuse(*args, **kwargs):
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    for proxy in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)


def zoo_architecture(plugin, model: str = "Ding2020MMA"):
    """RobustBench's own architecture for a CIFAR-10 Linf entry, randomly initialized."""
    utils = plugin.loading.robustbench_utils()
    entry = utils.all_models[utils.BenchmarkDataset("cifar10")][utils.ThreatModel("Linf")][model]
    torch.manual_seed(0)
    return entry["model"]().eval()


def test_the_table_is_the_installed_zoo(plugin):
    """Names, ensembles, hub URLs and input sides, as robustbench 1.1.1 has them."""
    import timm
    import torchvision

    table = plugin.table
    zoo = {(d.value, t.value): models for d, ts in plugin.loading.robustbench_zoo().items()
           for t, models in ts.items()}
    assert plugin.entries.installed_version() == table.VERSION
    assert {group: tuple(models) for group, models in zoo.items()} == table.ZOO
    for (dataset, threat), models in zoo.items():
        for model, info in models.items():
            key = f"{dataset}:{threat}:{model}"
            timm_name = f"{model.lower().replace('-', '_')}_{dataset}_{threat.lower()}"
            if timm.is_model(timm_name):  # load_model's own first choice
                assert table.HUB[key] == timm.models.get_pretrained_cfg(timm_name).url
            elif dataset == "imagenet" and "Standard" in model:  # torchvision's weights, no file
                assert table.HUB[key] == torchvision.models.ResNet50_Weights.IMAGENET1K_V1.url
            else:
                assert key not in table.HUB
                ids = info["gdrive_id"]
                assert table.ENSEMBLES.get(key) == (len(ids) if isinstance(ids, list) else None)
            assert table.SIDES.get(key) == (288 if info.get("preprocessing") == "Crop288" else None)


def test_listing_the_zoo_imports_no_robustbench(tmp_path):
    script = ("import sys\nfrom harness.session import load_components\n"
              "names = load_components(autoload=False).architectures.names()\n"
              "print(sum(n.startswith('rb:') for n in names), 'rb:cifar10:Linf:Carmon2019Unlabeled' in names,"
              " any(m.startswith('robustbench') for m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                            env={"HARNESS_DISABLE_PLUGIN_AUTOLOAD": "1", "PATH": "/usr/bin:/bin"})
    assert result.stdout.split() == ["206", "True", "False"], result.stderr


def test_placed_weights_build_offline_and_evaluate(components, plugin, tmp_path, offline):
    reference = zoo_architecture(plugin)
    path = tmp_path / "cifar10" / "Linf" / "Ding2020MMA.pt"  # RobustBench's model_dir layout
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()}}, path)

    entry = components.architectures.get(NAME)
    params = entry.make_params({"model_dir": str(tmp_path)})
    assert params.weights_file == str(path)
    assert local_file_digests(params) == (("weights_file", hashlib.sha256(path.read_bytes()).hexdigest()),)
    assert entry.check_input(params, (3, 32, 32)) is None
    model = entry.factory(params, CIFAR10).eval()
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    y = torch.arange(4)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))

    attack_entry = components.attacks.get("pgd")
    threat = ThreatModel(norm="linf", eps=8 / 255)
    pgd = attack_entry.factory(attack_entry.make_params({"steps": 2}), threat)
    x_adv, norms = GuardedAttack(pgd, threat).run(model, x, y)  # the engine's budget check
    assert x_adv.shape == x.shape and float(norms.max()) <= 8 / 255 + 1e-6


def test_missing_weights_are_one_clear_error(components, tmp_path, offline):
    entry = components.architectures.get(NAME)
    path = tmp_path / "cifar10" / "Linf" / "Ding2020MMA.pt"
    placing = (f"download https://drive.google.com/uc?id={GDRIVE_ID} and save it as {path} (or set "
               "model_dir to a folder laid out as RobustBench's model_dir, cifar10/Linf/Ding2020MMA.pt "
               "inside)")
    with pytest.raises(UserError) as caught:
        entry.factory(entry.make_params({"model_dir": str(tmp_path)}), CIFAR10)
    assert str(caught.value) == (f"{NAME}: cannot download its weights: drive.google.com cannot be "
                                 f"reached (OSError: no network in this test); {placing}")
    with pytest.raises(UserError) as caught:
        entry.factory(entry.make_params({"model_dir": str(tmp_path), "download": False}), CIFAR10)
    assert str(caught.value) == f"{NAME}: weights missing and download = false: {placing}"
    assert not path.exists()


def test_a_damaged_file_is_one_line(components, tmp_path, offline):
    entry = components.architectures.get(NAME)
    path = tmp_path / "cifar10" / "Linf" / "Ding2020MMA.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError) as caught:
        entry.factory(entry.make_params({"model_dir": str(tmp_path)}), CIFAR10)
    message = str(caught.value)
    assert message.startswith(f"{NAME}: robustbench.load_model failed (UnpicklingError: ")
    assert message.endswith(f"; check or delete {path} (RobustBench's own file is expected)")
    assert "\n" not in message


def test_the_zoo_declares_its_inputs_and_classes(components, tmp_path, run_cli, monkeypatch):
    entry = components.architectures.get(NAME)
    params = entry.make_params({"model_dir": str(tmp_path)})
    assert entry.test_input_shape == (3, 32, 32)
    assert components.architectures.get("rb:imagenet:Linf:Wong2020Fast").test_input_shape == (3, 288, 288)
    with pytest.raises(UserError) as caught:
        entry.factory(params, DataInfo((3, 32, 32), 100, (0.5,) * 3, (0.25,) * 3))
    assert str(caught.value) == f"{NAME} has 10 classes and the dataset 100: evaluate it on cifar10"
    with pytest.raises(ValueError, match=r"weights_file is where robustbench\.load_model reads the weights"):
        entry.make_params({"model_dir": str(tmp_path), "weights_file": str(tmp_path / "other.pt")})
    monkeypatch.chdir(tmp_path)
    (tmp_path / "suite.toml").write_text(
        f'datasets = ["digits"]\narchitectures = ["{NAME}"]\nrecipes = ["standard-digits"]\n'
        'attacks = ["fgsm-linf-0.1"]\n', encoding="utf-8")
    result = run_cli("validate", "suite.toml")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: suite.toml: architectures[0]: {NAME} takes 3×32×32 images in [0,1] (cifar10 as "
        "RobustBench feeds it), not inputs of shape (1, 8, 8) (dataset 'digits' has inputs of shape "
        "(1, 8, 8))")
