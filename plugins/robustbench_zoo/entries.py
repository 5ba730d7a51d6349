"""The zoo's entries and their params: what each model takes, where its weights file lives.

Each entry gets its own small params model (``defer_build``: about 0.25 ms each) whose
``LocalFile`` fields name its weights files under ``model_dir``, so the files' sha256 go into
the cell hash like any other local file's.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse

from pydantic import ConfigDict, Field, create_model, model_validator

from harness import LocalFile, Params

from . import table

CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet": 1000}
SIDE = {"cifar10": 32, "cifar100": 32, "imagenet": 224}
ENV_CACHE = "HARNESS_CACHE"


@dataclass(frozen=True)
class ZooEntry:
    dataset: str
    threat: str
    model: str

    @property
    def key(self) -> str:
        return f"{self.dataset}:{self.threat}:{self.model}"

    @property
    def name(self) -> str:
        return f"rb:{self.key}"

    @property
    def classes(self) -> int:
        return CLASSES[self.dataset]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        side = table.SIDES.get(self.key, SIDE[self.dataset])
        return (3, side, side)

    @property
    def hub_url(self) -> str | None:
        """The URL timm or torchvision fetches this entry's weights from (None: Google Drive)."""
        return table.HUB.get(self.key)

    def files(self) -> tuple[str, ...]:
        """Weights files, relative to ``model_dir``, where ``robustbench.load_model`` reads them
        (hub weights: torch.hub's ``checkpoints`` folder, which the build points into it)."""
        if self.hub_url:
            return (f"hub/checkpoints/{Path(urlparse(self.hub_url).path).name}",)
        stem = f"{self.dataset}/{self.threat}/{self.model}.pt"
        members = table.ENSEMBLES.get(self.key)
        return tuple(f"{stem}_m{i}.pt" for i in range(members)) if members else (stem,)

    def file_fields(self) -> tuple[str, ...]:
        count = len(self.files())
        return ("weights_file",) if count == 1 else tuple(f"weights_file_m{i}" for i in range(count))


def default_model_dir() -> Path:
    """``$HARNESS_CACHE/robustbench``, else the platform's user cache (as the harness's own)."""
    import platformdirs

    return Path(os.environ.get(ENV_CACHE) or platformdirs.user_cache_dir("robust-harness")) / "robustbench"


def installed_version() -> str | None:
    try:
        return importlib.metadata.version("robustbench")
    except importlib.metadata.PackageNotFoundError:
        return None


def zoo_entries() -> list[ZooEntry]:
    """Every zoo entry: from the table for robustbench 1.1.1, from the package for another."""
    if installed_version() == table.VERSION:
        names = table.ZOO
    else:
        from .loading import robustbench_zoo

        names = {(d.value, t.value): tuple(m) for d, ts in robustbench_zoo().items() for t, m in ts.items()}
    return [ZooEntry(dataset, threat, model) for (dataset, threat), models in names.items()
            for model in models]


class ZooParams(Params):
    """Where the weights are and whether they may be downloaded; the files are derived."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    zoo: ClassVar[ZooEntry]

    model_dir: str | None = Field(
        default=None, description="RobustBench's model_dir: <dataset>/<threat>/<model>.pt (and "
                                  "hub/checkpoints/ for timm's and torchvision's weights); default "
                                  "$HARNESS_CACHE/robustbench or the user cache dir's robust-harness/"
                                  "robustbench.")
    download: bool = Field(
        default=True, description="Download missing weights as robustbench does (Google Drive, or "
                                  "timm's/torchvision's URL); false: a missing file is an error.")

    def root(self) -> Path:
        return Path(self.model_dir).expanduser() if self.model_dir else default_model_dir()

    def paths(self) -> list[Path]:
        return [Path(getattr(self, name)) for name in self.zoo.file_fields()]

    @model_validator(mode="after")
    def _derive_files(self) -> ZooParams:
        for name, relative in zip(self.zoo.file_fields(), self.zoo.files(), strict=True):
            derived = str(self.root() / relative)
            given = getattr(self, name)
            if given is not None and Path(given) != Path(derived):
                raise ValueError(f"{name} is where robustbench.load_model reads the weights under "
                                 f"model_dir ({derived}); to use another folder, set model_dir")
            setattr(self, name, derived)
        return self


def params_for(entry: ZooEntry) -> type[ZooParams]:
    """The entry's params model: ``ZooParams`` plus one ``LocalFile`` field per weights file."""
    fields: dict[str, Any] = {
        name: (LocalFile | None, Field(default=None, description=f"Derived: model_dir/{relative}."))
        for name, relative in zip(entry.file_fields(), entry.files(), strict=True)}
    ident = re.sub(r"\W", "_", entry.key)
    model = create_model(f"ZooParams_{ident}", __base__=ZooParams, **fields)
    model.zoo = entry
    return model
