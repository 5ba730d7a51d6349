"""Trained weights for any architecture: found (a file, a URL in the cache, a harness run's
checkpoint), verified by sha256 on every use, and loaded strictly.

Strict means a missing or unexpected key, or a shape that differs, is an error naming them,
never a warning: a model that silently kept a random head would be scored as if trained.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import platformdirs
import torch
from safetensors.torch import load_file
from torch import nn

from harness.cells import ResolvedWeights
from harness.errors import UserError
from harness.files import file_sha256
from harness.specs import Weights
from harness.tomlfile import Where, relative_to

ENV_CACHE = "HARNESS_CACHE"


def cache_dir() -> Path:
    """Where downloaded weights live: ``$HARNESS_CACHE``, else the platform's user cache."""
    return Path(os.environ.get(ENV_CACHE) or platformdirs.user_cache_dir("robust-harness"))


def cached_path(url: str, sha256: str) -> Path:
    """A URL's file in the cache, named by its digest (two URLs of one file share it)."""
    name = url.rstrip("/").rsplit("/", 1)[-1].split("?")[0] or "weights"
    return cache_dir() / "weights" / f"{sha256[:16]}-{name}"


def resolve_weights(spec: Weights, base: Path, where: Where) -> ResolvedWeights:
    """The weights a suite or catalogue entry names, checked as far as possible without a
    network: a local file must exist and match its sha256; ``base`` is the naming file's
    folder."""
    where = where.child("weights")
    strip = tuple(spec.strip)
    if spec.run is not None:
        path, digest = run_checkpoint(relative_to(spec.run, base), spec.cell or "", where)
        return ResolvedWeights(digest, str(path), key=spec.key, strip=strip, whole_model=True)
    if spec.url is not None:
        assert spec.sha256 is not None  # the spec's own check
        path = cached_path(spec.url, spec.sha256)
        cached = path.is_file() and file_sha256(path) == spec.sha256
        return ResolvedWeights(spec.sha256, str(path) if cached else None, spec.url, spec.key,
                               strip)
    path = relative_to(spec.path or "", base)
    if not path.is_file():
        raise where.child("path").error(f"weights file {path} does not exist; paths are "
                                        "relative to the file that names them")
    digest = file_sha256(path)
    if spec.sha256 and digest != spec.sha256:
        raise where.child("sha256").error(f"{path} has sha256 {digest}, not the one given; "
                                          "is it the right file?")
    return ResolvedWeights(digest, str(path), key=spec.key, strip=strip)


def run_checkpoint(run: Path, cell: str, where: Where) -> tuple[Path, str]:
    """The checkpoint of a finished train cell of another run: by hash (or a unique prefix)
    or by labels ``architecture/recipe/seed``."""
    db = run / "results.db"
    if not db.is_file():
        raise where.child("run").error(f"{run}: no results.db there; name a harness output "
                                       "folder, e.g. runs/quickstart")
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT hash, labels_json, checkpoint, checkpoint_sha256 FROM "
                            "train_cells WHERE status = 'done'").fetchall()
    found = [row for row in rows if row[0].startswith(cell) or _labels(row[1]) == cell]
    if len(found) != 1:
        known = ", ".join(f"{h[:8]} ({_labels(labels)})" for h, labels, _, _ in rows) or "none"
        what = "matches no" if not found else "matches more than one"
        raise where.child("cell").error(f"{cell!r} {what} finished train cell of {run}: "
                                        f"{known}")
    _, _, checkpoint, digest = found[0]
    path = Path(checkpoint)
    if not path.is_file():
        raise where.child("cell").error(f"the checkpoint of {cell!r}, {path}, is missing")
    actual = file_sha256(path)
    if digest is not None and actual != digest:
        raise where.child("cell").error(f"the checkpoint of {cell!r}, {path}, is damaged "
                                        "(its sha256 is not the one the run recorded)")
    return path, actual


def _labels(labels_json: str) -> str:
    labels = json.loads(labels_json)
    return f"{labels['architecture']}/{labels['recipe']}/{labels['seed']}"


def fetch(weights: ResolvedWeights) -> Path:
    """The weights' local file, downloaded into the cache first when it is only a URL (through
    a temporary file, verified, then renamed; a corrupt cached copy is fetched again)."""
    if weights.file is not None:
        path = Path(weights.file)
        if file_sha256(path) != weights.sha256:
            raise UserError(f"weights file {path} changed since the suite was planned (its "
                            "sha256 differs); plan again")
        return path
    assert weights.url is not None
    path = cached_path(weights.url, weights.sha256)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(weights.url, str(tmp), progress=True)
    except Exception as error:  # no network, a 404, a refused connection
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot download {weights.url} ({type(error).__name__}: {error}); "
                        f"without a network, fetch it elsewhere and place it at {path} "
                        f"(sha256 {weights.sha256})") from None
    if file_sha256(tmp) != weights.sha256:
        tmp.unlink()
        raise UserError(f"{weights.url} downloaded with a different sha256 than the one given "
                        f"({weights.sha256}); check the URL and the digest")
    os.replace(tmp, path)
    return path


def read_state(weights: ResolvedWeights) -> dict[str, torch.Tensor]:
    """The state dict in the file: the ``key`` entry if given, prefixes stripped."""
    path = fetch(weights)
    try:
        state: Any = (load_file(str(path)) if path.suffix == ".safetensors" else
                      torch.load(path, map_location="cpu", weights_only=True))
    except Exception as error:
        raise UserError(f"weights file {path} cannot be read as a checkpoint: "
                        f"{type(error).__name__}: {error}") from None
    if weights.key is not None:
        if not isinstance(state, dict) or weights.key not in state:
            keys = ", ".join(list(state)[:8]) if isinstance(state, dict) else type(state).__name__
            raise UserError(f"weights file {path} has no entry {weights.key!r} (it has: {keys})")
        state = state[weights.key]
    if isinstance(state, dict) and not all(isinstance(v, torch.Tensor) for v in state.values()):
        nested = [k for k, v in state.items() if isinstance(v, dict)]
        raise UserError(f"weights file {path} holds a checkpoint ({_few(list(state))}), not a "
                        f"state dict; name the entry with key = \"{(nested or ['...'])[0]}\"")
    if not isinstance(state, dict):
        raise UserError(f"weights file {path} holds a {type(state).__name__}, not a state dict; "
                        "save model.state_dict(), or name its entry with key = \"...\"")
    for prefix in weights.strip:
        state = {k.removeprefix(prefix): v for k, v in state.items()}
    return state


def load_weights(model: nn.Module, weights: ResolvedWeights) -> None:
    """Load strictly: every key of the model present with its shape, no key left over."""
    state = read_state(weights)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} (model {tuple(v.shape)})"
              for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        hint = _prefix_hint(missing, unexpected)
        parts = [f"{len(missing)} missing key(s): {_few(missing)}" if missing else "",
                 f"{len(unexpected)} unexpected key(s): {_few(unexpected)}" if unexpected else "",
                 f"wrong shape: {_few(shapes)}" if shapes else ""]
        raise UserError(f"weights do not fit the architecture: "
                        f"{'; '.join(p for p in parts if p)}{hint}")
    model.load_state_dict(state, strict=True)


def _few(items: list[str]) -> str:
    return ", ".join(items[:4]) + (" …" if len(items) > 4 else "")


def _prefix_hint(missing: list[str], unexpected: list[str]) -> str:
    """A common prefix on the checkpoint's side (DataParallel's ``module.``, a harness model's
    ``backbone.``) is the usual cause: say which ``strip`` would fix it."""
    for key in unexpected[:1]:
        prefix = key.split(".", 1)[0] + "."
        if key.removeprefix(prefix) in missing:
            return f'; add strip = ["{prefix}"]'
    return ""
