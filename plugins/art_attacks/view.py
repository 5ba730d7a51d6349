"""The model as ART sees it: a view that calls the model and leaves its modes alone, wrapped
in one cached ``PyTorchClassifier`` per model."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from harness.toolkits import count_classes, model_device, model_dtype


class _ArtView(nn.Module):
    """What ART wraps instead of the model: calls it, and holds it only weakly.

    * ``forward`` calls the model, so a Sequential subclass's own forward and hooks registered on
      the model run (ART would run an ``nn.Sequential``'s children one by one);
    * ``train()`` does nothing: ART calls ``train(False)`` before every prediction and gradient
      and never restores the mode; the engine owns the modes;
    * the model is not a submodule and only weakly referenced, so ART cannot move it and the
      cached classifier does not keep a finished model alive;
    * inputs are cast to the model's dtype (ART is float32) and outputs back to float32.
    """

    def __init__(self, model: nn.Module, dtype: torch.dtype, probabilities: bool) -> None:
        super().__init__()
        self._model = weakref.ref(model)
        self._dtype, self._probabilities = dtype, probabilities

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        model = self._model()
        if model is None:  # pragma: no cover - the cache drops entries with their model
            raise RuntimeError("the model this ART classifier wraps no longer exists")
        logits = model(x.to(self._dtype)).float()
        return logits.softmax(dim=1) if self._probabilities else logits

    def train(self, mode: bool = True) -> _ArtView:
        return self


@contextlib.contextmanager
def on_device(device: torch.device) -> Iterator[None]:
    """Make the model's own CUDA device current while classifiers and attacks are built: ART
    puts a ``PyTorchClassifier`` on cuda:<current device> (and moves the model there)."""
    with torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext():
        yield


#: model → {probabilities: (signature, classifier)}. Weak keys, and a classifier holds its model
#: only weakly (``_ArtView``), so the entries go away with the model.
_CLASSIFIERS: weakref.WeakKeyDictionary[nn.Module, dict[bool, tuple[tuple[Any, ...], Any]]] = (
    weakref.WeakKeyDictionary())


def art_classifier(model: nn.Module, x: torch.Tensor, *, probabilities: bool = False) -> Any:
    """The cached ``PyTorchClassifier`` of ``model`` for inputs shaped like ``x``.

    Built once per model (and output kind: logits, or softmax for the attacks that need
    probabilities); rebuilt only if the model moved to another device or dtype, or the input
    shape changed.
    """
    device = model_device(model, x.device)
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"ART 1.20 runs PyTorch models on cpu or cuda only; this model is on "
                         f"{device.type} (run with --device cpu)")
    dtype = model_dtype(model, torch.float32)
    signature = (tuple(x.shape[1:]), device, dtype)
    per_model = _CLASSIFIERS.setdefault(model, {})
    cached = per_model.get(probabilities)
    if cached is not None and cached[0] == signature:
        return cached[1]
    from art.estimators.classification import PyTorchClassifier

    with on_device(device):
        classifier = PyTorchClassifier(
            model=_ArtView(model, dtype, probabilities), loss=nn.CrossEntropyLoss(),
            input_shape=tuple(x.shape[1:]), nb_classes=count_classes(model, x),
            clip_values=(0.0, 1.0), preprocessing=(0.0, 1.0), channels_first=True,
            device_type="gpu" if device.type == "cuda" else "cpu")
    per_model[probabilities] = (signature, classifier)
    return classifier

