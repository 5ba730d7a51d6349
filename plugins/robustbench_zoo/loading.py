"""Building a zoo model with ``robustbench.load_model``, offline when its weights are in place.

``load_model`` reads ``<model_dir>/<dataset>/<threat>/<model>.pt`` (ensembles:
``<model>.pt_m<i>.pt``) and downloads it from Google Drive (gdown) only when the file is missing;
its timm and torchvision entries go through torch.hub's cache, pointed here into
``<model_dir>/hub`` for the build. So a placed file means no network call. A missing one is
fetched by robustbench only after a short reachability probe: with no network the user gets one
line naming the source, the file and how to place it, not a traceback or a wait on a
connection that never answers.
"""

from __future__ import annotations

import importlib
import importlib.util
import socket
import sys
import unittest
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlparse

from torch import nn

from harness import UserError

from .entries import ZooEntry, ZooParams

GDRIVE = "https://drive.google.com/uc?id={}"
PROBE_SECONDS = 5.0


class WeightsUnavailable(UserError, unittest.SkipTest):
    """Weights missing with ``download = false``: a user error in a run, and a skip for the
    conformance kit (whose ``test_params`` never download), as a dataset's missing files are."""


def robustbench_utils() -> ModuleType:
    """``robustbench.utils`` (``load_model``). robustbench 1.1.1's ``__init__`` imports the
    GitHub-only ``autoattack`` package (its declared dependency, pyautoattack, installs as
    ``pyautoattack``) and, through its data loaders, ``pkg_resources`` (gone from setuptools 82);
    building a model needs neither, so when that ``__init__`` cannot run, the package is entered
    without it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit and pkg_resources deprecations on import
        try:
            import robustbench  # noqa: F401
        except ImportError:
            spec = importlib.util.find_spec("robustbench")
            assert spec is not None  # the plugin registers nothing without the package
            sys.modules["robustbench"] = importlib.util.module_from_spec(spec)
        return importlib.import_module("robustbench.utils")


def robustbench_zoo() -> Any:
    """robustbench's ``model_dicts``: dataset → threat model → name → {model, gdrive_id…}."""
    return robustbench_utils().all_models


def sources(entry: ZooEntry) -> list[str]:
    """Where each weights file comes from, in the order of ``entry.files()``."""
    if entry.hub_url:
        return [entry.hub_url]
    utils = robustbench_utils()
    ids = utils.all_models[utils.BenchmarkDataset(entry.dataset)][utils.ThreatModel(entry.threat)][
        entry.model]["gdrive_id"]
    return [GDRIVE.format(i) for i in (ids if isinstance(ids, list) else [ids])]


def _placing(entry: ZooEntry, missing: list[tuple[Path, str]]) -> str:
    saves = "; ".join(f"download {source} and save it as {path}" for path, source in missing)
    return (f"{saves} (or set model_dir to a folder laid out as RobustBench's model_dir, "
            f"{entry.files()[0]} inside)")


def _unreachable(sources_: list[str]) -> str | None:
    """Why the first source's host cannot be reached, or None (also None behind a proxy, which
    a direct probe cannot judge)."""
    if urllib.request.getproxies().get("https"):
        return None
    host = urlparse(sources_[0]).hostname or ""
    try:
        socket.create_connection((host, 443), timeout=PROBE_SECONDS).close()
    except OSError as exc:
        return f"{host} cannot be reached ({type(exc).__name__}: {exc})"
    return None


@contextmanager
def _hub_dir(path: Path) -> Iterator[None]:
    """torch.hub's cache (timm's and torchvision's weights) inside model_dir for this build."""
    import torch.hub

    before = torch.hub.get_dir()
    torch.hub.set_dir(str(path))
    try:
        yield
    finally:
        torch.hub.set_dir(before)


def build(params: ZooParams, num_classes: int) -> nn.Module:
    """``robustbench.load_model`` for the params' entry, weights from ``params.root()``, for a
    dataset of ``num_classes``."""
    entry = params.zoo
    paths = params.paths()
    missing = [(path, source) for path, source in zip(paths, sources(entry), strict=True)
               if not path.is_file()]
    if missing and not params.download:  # first: the conformance kit skips here, whatever its data
        raise WeightsUnavailable(f"{entry.name}: weights missing and download = false: "
                                 f"{_placing(entry, missing)}")
    if num_classes != entry.classes:
        raise UserError(f"{entry.name} has {entry.classes} classes and the dataset {num_classes}: "
                        f"evaluate it on {entry.dataset}")
    if missing and (reason := _unreachable([source for _, source in missing])):
        raise UserError(f"{entry.name}: cannot download its weights: {reason}; "
                        f"{_placing(entry, missing)}")
    try:
        with _hub_dir(params.root() / "hub"):
            model = robustbench_utils().load_model(entry.model, model_dir=str(params.root()),
                                                   dataset=entry.dataset, threat_model=entry.threat)
    except Exception as exc:  # a failed download or an unreadable file: one line, how to fix it
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        fix = _placing(entry, missing) if missing else (
            f"check or delete {', '.join(map(str, paths))} (RobustBench's own file is expected)")
        raise UserError(f"{entry.name}: robustbench.load_model failed ({type(exc).__name__}: "
                        f"{text}); {fix}") from None
    return model
