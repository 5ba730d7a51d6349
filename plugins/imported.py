"""Any importable model class or function as an architecture: ``module:callable`` (for
example ``torchvision.models:resnet18``) or ``path/to/file.py:Class``.

A suite names the target directly (``architectures = [{ name = "my_models.py:Net", params =
{ width = 8 } }]``); the engine turns that into this factory with the target, the file (a
``LocalFile``, so its sha256 is in the cell hash) or the installed package's version, and
the entry's params as keyword arguments. The callable must return an ``nn.Module`` taking
the dataset's inputs and returning logits (declare ``mean``/``std``/``input_size`` on the
entry when it expects other inputs than [0,1] images of the dataset's size).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from pydantic import Field

from harness import DataInfo, LocalFile, Params, UserError, hookimpl

__version__ = "1.0"


class ImportParams(Params):
    target: str = Field(description='"module:callable" or "path/to/file.py:Name".')
    file: LocalFile | None = Field(default=None, description="The file of a file target.")
    package_version: str | None = Field(default=None, description="The installed version of "
                                        "a module target's package.")
    kwargs: dict[str, Any] = Field(default_factory=dict)


def imported(params: ImportParams, info: DataInfo) -> Any:
    return load_target(params)(**params.kwargs)


def load_target(params: ImportParams) -> Any:
    where, _, name = params.target.rpartition(":")
    if params.file is not None:
        path = Path(params.file)
        module_name = f"_harness_import_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise UserError(f"{path}: cannot be imported")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as error:
            raise UserError(f"{params.target}: cannot import {where!r} ({error}); install it "
                            "or check the name") from None
    target = getattr(module, name, None)
    if not callable(target):
        raise UserError(f"{params.target}: {where} has no callable {name!r}")
    return target


@hookimpl
def harness_register_architectures(registry):
    registry.add("import", imported, params=ImportParams, test_input_shape=(3, 32, 32),
                 test_params={"target": "torchvision.models:resnet18",
                              "kwargs": {"num_classes": 10}},
                 description="an importable callable: module:callable or file.py:Name")
