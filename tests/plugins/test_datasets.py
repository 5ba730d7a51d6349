"""Dataset plugins: the embedded digits split, synthetic data, and the missing-files error."""

from __future__ import annotations

import shutil

import pytest
import torch
from click.testing import CliRunner

from harness import UserError
from harness.cli import cli
from harness.session import load_components


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


def test_missing_imagenette_says_which_release_goes_where(tmp_path, run_cli):
    suite = tmp_path / "nette.toml"
    suite.write_text('datasets = [{ name = "imagenette", params = { image_size = 64 } }]\n'
                     'architectures = ["small-cnn"]\nrecipes = ["standard-cifar"]\n')
    result = run_cli("run", str(suite), "--output", str(tmp_path / "out"),
                     "--data-root", str(tmp_path / "data"))
    assert result.exit_code == 2, result.output
    assert (f"error: {suite}: datasets (imagenette): dataset 'imagenette': the 320px release is "
            f"not under {tmp_path / 'data' / 'imagenette'}") in result.stderr
    assert "imagenette2-320.tgz" in result.stderr and "download = true" in result.stderr


def write_images(folder, classes: dict[str, int], size: int = 12, seed: int = 0,
                 suffix: str = ".png") -> None:
    """Image files, one colour per class plus noise: learnable, like a real folder dataset."""
    from PIL import Image

    gen = torch.Generator().manual_seed(seed)
    for k, (name, count) in enumerate(classes.items()):
        (folder / name).mkdir(parents=True)
        colour = torch.tensor([k % 2, (k // 2) % 2, 0.5]).view(3, 1, 1)
        for i in range(count):
            pixels = (colour + 0.1 * torch.randn(3, size, size, generator=gen)).clamp(0, 1)
            array = (pixels * 255).round().byte().permute(1, 2, 0).numpy()
            Image.fromarray(array).save(folder / name / f"{i}{suffix}")


def test_image_folder_trains_and_is_attacked_end_to_end(tmp_path, run_cli, monkeypatch):
    write_images(tmp_path / "pets" / "train", {"cat": 12, "dog": 12, "fox": 12})
    write_images(tmp_path / "pets" / "test", {"cat": 4, "dog": 4, "fox": 4}, seed=1)
    monkeypatch.chdir(tmp_path)  # the folder path is relative to the working directory
    (tmp_path / "suite.toml").write_text(
        'datasets = [{ name = "image-folder", params = { path = "pets", image_size = 8 } }]\n'
        'architectures = [{ name = "small-cnn", params = { channels = 4, hidden = 8 } }]\n'
        'recipes = [{ name = "r", defense = "standard", epochs = 3, batch_size = 8, lr = 0.05 }]\n'
        'attacks = ["fgsm-linf-0.1"]\nmetrics = []\n')
    result = run_cli("run", "suite.toml", "--output", "out")
    assert result.exit_code == 0, result.output
    matrix = (tmp_path / "out" / "matrix.csv").read_text().splitlines()
    assert len(matrix) == 2 and "fgsm-linf-0.1" in matrix[0]
    data = load("image-folder", path="pets", image_size=8)
    assert data.info.input_shape == (3, 8, 8) and data.info.num_classes == 3
    x, y = data.train[0]
    assert x.shape == (3, 8, 8) and float(x.min()) >= 0 and float(x.max()) <= 1 and y == 0


def test_image_folder_mistakes_are_reported_at_validation(tmp_path, run_cli, monkeypatch):
    write_images(tmp_path / "pets" / "train", {"cat": 1, "dog": 1})
    write_images(tmp_path / "pets" / "val", {"cat": 1, "fox": 1})
    monkeypatch.chdir(tmp_path)
    rest = 'architectures = ["small-cnn"]\nrecipes = ["standard-digits"]\n'
    for params, message in [
        ('{ path = "pets" }', "pets/test is not a folder; image-folder expects pets/train/<class>/"),
        ('{ path = "pets", test = "val" }',
         "train/ and val/ hold different classes: ['dog', 'fox'] are in only one of them"),
    ]:
        (tmp_path / "s.toml").write_text(
            f'datasets = [{{ name = "image-folder", params = {params} }}]\n' + rest)
        result = run_cli("validate", "s.toml")
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error: s.toml: datasets[0].params: "), result.stderr
        assert message in result.stderr


def test_imagenette_reads_the_fastai_layout(tmp_path):
    """A fake 160px release in torchvision's layout: <root>/imagenette/imagenette2-160/…"""
    from torchvision.datasets import Imagenette

    release = tmp_path / "imagenette" / "imagenette2-160"
    wnids = sorted(Imagenette._WNID_TO_CLASS)
    write_images(release / "train", dict.fromkeys(wnids, 2), size=20, suffix=".JPEG")
    write_images(release / "val", dict.fromkeys(wnids, 1), size=20, seed=1, suffix=".JPEG")
    entry = load_components().datasets.get("imagenette")
    data = entry.factory(entry.make_params({"variant": "160px", "image_size": 16}), tmp_path)
    assert len(data.train) == 20 and len(data.test) == 10
    x, y = data.test[9]
    assert x.shape == (3, 16, 16) and y == 9
    assert data.info.input_shape == (3, 16, 16) and data.info.num_classes == 10
    shutil.rmtree(release / "val" / wnids[0])
    with pytest.raises(UserError, match=r"release is incomplete \(val/ has 9 of the 10 class"):
        entry.factory(entry.make_params({"variant": "160px"}), tmp_path)
    shutil.rmtree(release / "val")
    with pytest.raises(UserError, match=r"the 160px release is incomplete .* under"):
        entry.factory(entry.make_params({"variant": "160px"}), tmp_path)
