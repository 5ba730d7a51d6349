"""Dataset plugins: the embedded digits split, synthetic data, and the missing-files error."""

from __future__ import annotations

import torch
from click.testing import CliRunner

from harness.cli import cli
from harness.components import load_components


def load(name, **params):
    entry = load_components().datasets.get(name)
    return entry.factory(entry.make_params(params), None)


def test_digits_split_is_deterministic_and_stratified():
    first, second = load("digits"), load("digits")
    x = first.train.tensors[0]
    assert x.shape == (1437, 1, 8, 8) and len(first.test) == 360
    assert torch.equal(x, second.train.tensors[0])
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert torch.bincount(first.test.tensors[1]).min() >= 35  # every class in the test split
    assert first.info.input_shape == (1, 8, 8) and first.info.num_classes == 10


def test_synthetic_shape_follows_params():
    data = load("synthetic", channels=3, size=5, num_classes=3, train_size=10, test_size=4)
    assert data.train.tensors[0].shape == (10, 3, 5, 5)
    assert data.info.input_shape == (3, 5, 5) and data.info.num_classes == 3


def test_missing_torchvision_files_say_where_and_how(tmp_path):
    suite = tmp_path / "cifar.toml"
    suite.write_text('datasets = ["cifar10"]\narchitectures = ["small-cnn"]\n'
                     'recipes = ["standard-cifar"]\n')
    result = CliRunner().invoke(cli, ["run", str(suite), "--output", str(tmp_path / "out"),
                                      "--data-root", str(tmp_path / "data")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    folder = tmp_path / "data" / "cifar10"
    expected = f"{suite}: datasets (cifar10): dataset 'cifar10': files not found under {folder}"
    assert expected in result.output
    assert "download = true" in result.output
