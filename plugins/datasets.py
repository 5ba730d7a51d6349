"""Datasets: scikit-learn's digits (embedded, no download), a synthetic set, torchvision sets,
Imagenette and any folder of images."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from torch.utils.data import TensorDataset

from harness import DataInfo, LoadedDataset, Params, UserError, hookimpl


class DigitsParams(Params):
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


class SyntheticParams(Params):
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


class TorchvisionParams(Params):
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


def _channel_stats_from(dataset, limit: int = 2000) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Channel statistics from up to ``limit`` training images spread evenly over the set (an
    image folder is ordered by class: its first images would all be one class)."""
    n = min(len(dataset), limit)
    picks = torch.linspace(0, len(dataset) - 1, n).round().long().unique()
    return _channel_stats(torch.stack([dataset[int(i)][0] for i in picks]))


def _resized(size: int, channels: int = 3, crop_fraction: float = 1.0):
    """Decoded images to [0,1] CHW tensors of ``size``×``size``: the shorter side resized to
    ``size / crop_fraction``, then a centre crop (ImageNet's evaluation transform at 0.875).

    Deterministic on purpose: random augmentation is the recipe's job (``augment``), on batches.
    """
    from torchvision import transforms

    steps = [transforms.Resize(round(size / crop_fraction)), transforms.CenterCrop(size)]
    if channels == 1:
        steps.append(transforms.Grayscale())
    return transforms.Compose([*steps, transforms.ToTensor()])


# --- Imagenette: the ten-class ImageNet subset of the generalization study -----------------------

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class ImagenetteParams(Params):
    image_size: int = Field(default=224, ge=8, description="Side of the square model input.")
    variant: Literal["full", "320px", "160px"] = Field(
        default="320px", description="Which fast.ai release to read (shorter side of the files).")
    download: bool = Field(default=False, description="Fetch the files when they are missing.")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (3, self.image_size, self.image_size)


def load_imagenette(params: ImagenetteParams, root: Path) -> LoadedDataset:
    """torchvision's Imagenette (train / val), normalized with ImageNet's statistics; both
    splits resized to image_size / 0.875 and centre-cropped (256 → 224, the generalization
    study's test transform)."""
    import torchvision

    folder = Path(root) / "imagenette"

    def split(name: str):
        try:
            dataset = torchvision.datasets.Imagenette(
                str(folder), split=name, size=params.variant, download=params.download,
                transform=_resized(params.image_size, crop_fraction=0.875))
            if len(dataset.wnids) == 10:  # fewer class folders would shift every label
                return dataset
            missing = f"is incomplete ({name}/ has {len(dataset.wnids)} of the 10 class folders)"
        except OSError as exc:
            if params.download:  # network failures while downloading
                raise UserError(f"dataset 'imagenette': download into {folder} failed ({exc}); "
                                "copy the files there by hand") from None
            missing = f"is incomplete ({exc})"
        except RuntimeError:  # torchvision: no release folder at all
            missing = "is not"
        archive = "imagenette2" + ("" if params.variant == "full"
                                   else "-" + params.variant.removesuffix("px"))
        raise UserError(
            f"dataset 'imagenette': the {params.variant} release {missing} under {folder}. Unpack "
            f"{archive}.tgz (https://github.com/fastai/imagenette) there, or set params = "
            "{ download = true } on a machine with a network, or pass --data-root DIR")

    train, test = split("train"), split("val")
    return LoadedDataset(train, test, DataInfo(params.input_shape, 10, IMAGENET_MEAN, IMAGENET_STD))


# --- any folder of images, one subfolder per class ------------------------------------------------


def _class_folders(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir() if entry.is_dir())


class ImageFolderParams(Params):
    path: str = Field(description="Folder holding train/ and test/, each with one subfolder of "
                                  "images per class (the same classes); relative to the working "
                                  "directory.")
    train: str = Field(default="train", description="Training subfolder.")
    test: str = Field(default="test", description="Test subfolder (e.g. 'val').")
    image_size: int = Field(default=32, ge=1, description="Side of the square model input.")
    channels: Literal[1, 3] = Field(default=3, description="1 converts the images to grayscale.")

    @model_validator(mode="after")
    def _folders_exist(self) -> ImageFolderParams:
        """Checked here so 'harness validate' reports a wrong path before anything runs; the
        path is made absolute, so the same name in another directory is another dataset (the
        images themselves are not hashed: write to a new folder rather than editing one)."""
        root = Path(self.path).expanduser()
        for split in (self.train, self.test):
            if not (root / split).is_dir():
                raise ValueError(f"{root / split} is not a folder; image-folder expects "
                                 f"{root}/{self.train}/<class>/*.png and {root}/{self.test}/<class>/…")
        train, test = _class_folders(root / self.train), _class_folders(root / self.test)
        if len(train) < 2:
            raise ValueError(f"{root / self.train} has {len(train)} class folder(s); give at "
                             "least 2 (one subfolder of images per class)")
        if train != test:
            raise ValueError(f"{self.train}/ and {self.test}/ hold different classes: "
                             f"{sorted(set(train) ^ set(test))} are in only one of them")
        self.path = str(root.resolve())
        return self

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    @property
    def num_classes(self) -> int:
        return len(_class_folders(Path(self.path).expanduser() / self.train))


def load_image_folder(params: ImageFolderParams, root: Path) -> LoadedDataset:
    """torchvision ``ImageFolder`` splits, normalized with statistics of up to 500 training images."""
    from torchvision.datasets import ImageFolder

    folder = Path(params.path).expanduser()
    transform = _resized(params.image_size, params.channels)
    train = ImageFolder(str(folder / params.train), transform=transform)
    test = ImageFolder(str(folder / params.test), transform=transform)
    info = DataInfo(params.input_shape, len(train.classes), *_channel_stats_from(train, 500))
    return LoadedDataset(train, test, info)


@hookimpl
def harness_register_datasets(registry):
    registry.add("digits", load_digits, params=DigitsParams, input_shape=(1, 8, 8),
                 num_classes=10, description="scikit-learn handwritten digits, 8×8, embedded")
    registry.add("synthetic", load_synthetic, params=SyntheticParams, input_shape=(1, 8, 8),
                 num_classes=4, description="class prototypes plus noise (shape set by params)")
    registry.add("imagenette", load_imagenette, params=ImagenetteParams, input_shape=(3, 224, 224),
                 num_classes=10, description="torchvision Imagenette: 10 ImageNet classes "
                                             "(the generalization study's second dataset)")
    registry.add("image-folder", load_image_folder, params=ImageFolderParams,
                 input_shape=(3, 32, 32), num_classes=2,
                 description="your images: <path>/train/<class>/… and <path>/test/<class>/…")
    for name, (class_name, shape, classes, _) in TORCHVISION.items():
        load, _, _ = _torchvision_loader(name)
        registry.add(name, load, params=TorchvisionParams, input_shape=shape,
                     num_classes=classes, description=f"torchvision {class_name}")
