"""Architecture variants: activation swaps (including Sparta) and input upsampling.

Each variant is ``factory(params, model, info) -> nn.Module`` applied to a built architecture,
in the order a suite lists them::

    architectures = [{ name = "resnet18", variants = [
        "sparta", { name = "upsample", params = { scale = 2 } }] }]

Registered: ``activation`` (with ``fn = ...``) and its shorthands ``relu``, ``silu``, ``gelu``,
``softplus``, ``mish``, ``prelu``, ``leakyrelu`` and ``sparta``, which replace every activation
module (or those under ``stages``); and ``upsample``, which interpolates the input after
normalization. Where things are:

* ``activations`` — which modules are activations (torch's, and timm's by class name; gates
  never), finding and replacing them, and the baseline activations' fields;
* ``sparta`` — Sparta (Guo et al., arXiv 2105.08269), a learned spatially attentive ReLU: its
  modules, its parameter files (``export_sparta`` / ``read_sparta``, also from a harness
  checkpoint) and loading them into another model;
* ``swap`` — the ``activation`` variant and the shorthands' parameter models;
* ``upsample`` — input upsampling (Xu et al., arXiv 2202.12435).

``export_sparta(model_or_state_dict, path)`` is re-exported here: it is how a trained Sparta
leaves one suite for another (see ``sparta``'s docstring).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from harness import hookimpl

from .sparta import export_sparta
from .swap import (
    ActivationParams,
    LeakyReLUParams,
    PReLUParams,
    ReLUParams,
    SoftplusParams,
    SpartaParams,
    fixed,
    swap_activations,
)
from .upsample import UpsampleParams, upsample

__all__ = ["export_sparta"]
__version__ = "1.0"

SHORTHANDS: dict[str, tuple[type[BaseModel], str, dict[str, Any]]] = {
    "relu": (ReLUParams, "swap every activation module for ReLU", {}),
    "silu": (ReLUParams, "swap every activation module for SiLU/Swish x·sigmoid(x)", {}),
    "gelu": (ReLUParams, "swap every activation module for GELU (exact erf form)", {}),
    "mish": (ReLUParams, "swap every activation module for Mish x·tanh(softplus(x))", {}),
    "softplus": (SoftplusParams, "swap every activation module for Softplus (beta)", {"beta": 2}),
    "leakyrelu": (LeakyReLUParams, "swap every activation module for LeakyReLU", {}),
    "prelu": (PReLUParams, "swap every activation module for PReLU (a learned slope per layer)", {}),
    "sparta": (SpartaParams, "Sparta: ReLU·(1+α·tanh(conv([mean_c;max_c](x)))), α=0 at init; "
                             "shared/per-layer, freeze, load from an export or checkpoint",
               {"kernel_size": 3}),
}


@hookimpl
def harness_register_variants(registry):
    registry.add("activation", swap_activations, params=ActivationParams,
                 description="swap every activation module (or those under stages) for fn; "
                             "timm's own activation classes included, SE gates never",
                 test_params={"fn": "sparta", "shared": False})
    for fn, (params, description, test_params) in SHORTHANDS.items():
        registry.add(fn, fixed(fn), params=params, description=description,
                     test_params=test_params)
    registry.add("upsample", upsample, params=UpsampleParams,
                 description="interpolate the input after normalization, before the backbone "
                             "(Xu et al. 2202.12435); attacks stay at the input resolution",
                 test_params={"scale": 2, "mode": "bilinear"})
