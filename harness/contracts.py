"""The data types plugins and the engine exchange: dataset info and splits, params, local files."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict
from torch.utils.data import Dataset


@dataclass(frozen=True)
class DataInfo:
    """What an architecture factory needs to know about its inputs.

    Inputs are always images in [0,1]; ``mean`` and ``std`` are the dataset's normalization,
    which the model applies inside its forward (see ``harness.nn.Normalize``).
    """

    input_shape: tuple[int, int, int]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True)
class LoadedDataset:
    """A dataset factory's result: train and test splits yielding (x in [0,1] CHW float32, y int).

    A ``TensorDataset`` is held whole on the device by the engine (no DataLoader), which is what
    makes small datasets fast.
    """

    train: Dataset
    test: Dataset
    info: DataInfo


class Params(BaseModel):
    """The base of every factory's params model: unknown keys are errors, so a misspelled
    setting in a suite stops the run with the key's location instead of being ignored."""

    model_config = ConfigDict(extra="forbid")


class _LocalFileMark:
    """Marks a params field naming a local file (see ``LocalFile``)."""


LOCAL_FILE = _LocalFileMark()

#: A params field type for a local file a component reads (weights, an exported activation):
#: the planner puts the file's sha256 into the cell's hash, so a changed file is a new cell,
#: never a stale stored result. Top-level fields only: ``x: LocalFile`` or ``LocalFile | None``.
LocalFile = Annotated[str, LOCAL_FILE]

