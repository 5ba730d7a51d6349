"""The RobustBench model zoo (``pip install -e ".[robustbench]"``): every entry of robustbench's
``model_dicts`` as an architecture ``rb:<dataset>:<threat>:<model>``, e.g.
``rb:cifar10:Linf:Carmon2019Unlabeled``, built by robustbench's own ``load_model`` with the
entry's published weights, so evaluating it reproduces its leaderboard row.

RobustBench models take [0,1] images (any normalization is inside them) and return logits: the
model contract here, so nothing is wrapped around them. Each entry declares its input size
(CIFAR 32×32, ImageNet 224×224, 288×288 for Wong2020Fast) and class count; another dataset is
refused at validation (size) or build (classes). Registering the ~200 entries imports nothing
(``table`` has the names); robustbench itself (seconds to import) is imported at the first build.

Where things are:

* ``table`` — robustbench 1.1.1's entries by name, ensembles, hub URLs and input sides;
* ``entries`` — ``ZooEntry``, the weights files under ``model_dir``, the per-entry params whose
  ``LocalFile`` fields put the files' sha256 into the cell hash;
* ``loading`` — importing robustbench, ``load_model`` offline when the files are in place, one
  clear error when they are missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from harness import DataInfo, UserError, hookimpl

from .entries import ZooEntry, ZooParams, installed_version, params_for, zoo_entries
from .loading import build

__version__ = "1.0"


def _factory(entry: ZooEntry) -> Callable[[ZooParams, DataInfo], nn.Module]:
    def factory(params: ZooParams, info: DataInfo) -> nn.Module:
        if problem := _shape_problem(entry, info.input_shape):
            raise UserError(problem)  # normally caught by 'harness validate' through check_input
        return build(params, info.num_classes)

    factory.__name__ = factory.__qualname__ = f"rb_{entry.model}"
    return factory


def _shape_problem(entry: ZooEntry, shape: tuple[int, ...]) -> str | None:
    if tuple(shape) == entry.input_shape:
        return None
    c, h, w = entry.input_shape
    return (f"{entry.name} takes {c}×{h}×{w} images in [0,1] ({entry.dataset} as RobustBench feeds "
            f"it), not inputs of shape {tuple(shape)}")


def _check(entry: ZooEntry) -> Callable[[Any, tuple[int, ...]], str | None]:
    return lambda params, shape: _shape_problem(entry, shape)


@hookimpl
def harness_register_architectures(registry):
    if installed_version() is None:
        return  # the optional extra is not installed (a bare robustbench folder is not an install)
    for entry in zoo_entries():
        _, h, w = entry.input_shape
        registry.add(entry.name, _factory(entry), params=params_for(entry), check_input=_check(entry),
                     test_input_shape=entry.input_shape, test_params={"download": False},
                     description=f"RobustBench {entry.dataset} {entry.threat} {entry.model}: its "
                                 f"architecture and weights through robustbench.load_model "
                                 f"([0,1] {h}×{w} inputs, {entry.classes} classes)",
                     pretrained=True)
