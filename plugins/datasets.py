"""Datasets: scikit-learn's digits (embedded, no download), a synthetic set, torchvision sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch.utils.data import TensorDataset

from harness import DataInfo, LoadedDataset, UserError, hookimpl


class DigitsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    test_fraction: float = Field(default=0.2, gt=0, lt=1)
    split_seed: int = 0


def _channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of the training images (the model normalizes with them)."""
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std)


def _tensor_splits(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor,
                   y_test: torch.Tensor, num_classes: int) -> LoadedDataset:
    mean, std = _channel_stats(x_train)
    info = DataInfo(tuple(x_train.shape[1:]), num_classes, mean, std)
    return LoadedDataset(TensorDataset(x_train, y_train), TensorDataset(x_test, y_test), info)


def load_digits(params: DigitsParams, root: Path) -> LoadedDataset:
    """1,797 real 8×8 handwritten digits shipped inside scikit-learn; /16 puts them in [0,1]."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    digits = sklearn_digits()
    x = torch.from_numpy((digits.images / 16.0).astype(np.float32)).unsqueeze(1)
    y = torch.from_numpy(digits.target.astype(np.int64))
    train_idx, test_idx = train_test_split(
        np.arange(len(y)), test_size=params.test_fraction, random_state=params.split_seed,
        stratify=digits.target)
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    return _tensor_splits(x[train_idx], y[train_idx], x[test_idx], y[test_idx], 10)


class SyntheticParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    train_size: int = Field(default=512, ge=1)
    test_size: int = Field(default=128, ge=1)
    channels: int = Field(default=1, ge=1)
    size: int = Field(default=8, ge=1)
    num_classes: int = Field(default=4, ge=2)
    noise: float = Field(default=0.15, ge=0)
    seed: int = 0

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Read by the planner to check eps units before anything is generated."""
        return (self.channels, self.size, self.size)


def load_synthetic(params: SyntheticParams, root: Path) -> LoadedDataset:
    """Class prototypes plus Gaussian noise, clipped to [0,1]: learnable, deterministic, instant."""
    gen = torch.Generator().manual_seed(params.seed)
    shape = (params.channels, params.size, params.size)
    prototypes = torch.rand((params.num_classes, *shape), generator=gen)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(params.num_classes, (n,), generator=gen)
        x = prototypes[y] + params.noise * torch.randn((n, *shape), generator=gen)
        return x.clamp(0, 1), y

    x_train, y_train = draw(params.train_size)
    x_test, y_test = draw(params.test_size)
    return _tensor_splits(x_train, y_train, x_test, y_test, params.num_classes)


class TorchvisionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    download: bool = Field(default=False, description="Fetch the files when they are missing.")


TORCHVISION = {
    # name: (torchvision class, input shape, classes, split keyword style)
    "cifar10": ("CIFAR10", (3, 32, 32), 10, "train"),
    "cifar100": ("CIFAR100", (3, 32, 32), 100, "train"),
    "svhn": ("SVHN", (3, 32, 32), 10, "split"),
    "mnist": ("MNIST", (1, 28, 28), 10, "train"),
    "fashion-mnist": ("FashionMNIST", (1, 28, 28), 10, "train"),
}


def _torchvision_loader(name: str):
    class_name, shape, classes, style = TORCHVISION[name]

    def load(params: TorchvisionParams, root: Path) -> LoadedDataset:
        import torchvision
        from torchvision.transforms import ToTensor

        cls = getattr(torchvision.datasets, class_name)
        folder = Path(root) / name

        def split(train: bool):
            where = {"train": train} if style == "train" else {"split": "train" if train else "test"}
            try:
                return cls(str(folder), download=params.download, transform=ToTensor(), **where)
            except RuntimeError as exc:
                raise UserError(
                    f"dataset {name!r}: files not found under {folder} ({exc}). Put the "
                    f"torchvision {class_name} files there, or set params = {{ download = true }} "
                    "on a machine with a network, or pass --data-root DIR"
                ) from None
            except OSError as exc:  # network failures while downloading
                raise UserError(
                    f"dataset {name!r}: download into {folder} failed ({exc}); copy the "
                    f"torchvision {class_name} files there by hand"
                ) from None

        train, test = split(True), split(False)
        info = DataInfo(shape, classes, *_channel_stats_from(train))
        return LoadedDataset(train, test, info)

    return load, shape, classes


def _channel_stats_from(dataset) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Channel statistics from up to 2,000 training images (enough for normalization)."""
    n = min(len(dataset), 2000)
    x = torch.stack([dataset[i][0] for i in range(n)])
    return _channel_stats(x)


@hookimpl
def harness_register_datasets(registry):
    registry.add("digits", load_digits, params=DigitsParams, input_shape=(1, 8, 8),
                 num_classes=10, description="scikit-learn handwritten digits, 8×8, embedded")
    registry.add("synthetic", load_synthetic, params=SyntheticParams, input_shape=(1, 8, 8),
                 num_classes=4, description="class prototypes plus noise (shape set by params)")
    for name, (class_name, shape, classes, _) in TORCHVISION.items():
        load, _, _ = _torchvision_loader(name)
        registry.add(name, load, params=TorchvisionParams, input_shape=shape,
                     num_classes=classes, description=f"torchvision {class_name}")
