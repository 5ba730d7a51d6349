"""The ``activation`` variant and its shorthands: which fields each ``fn`` takes, and the swap.

``activation`` takes ``fn`` and the fields of every activation; a field set for another ``fn``
is an error naming its owner. A shorthand (``relu``, ``sparta``…) is the same factory with
``fn`` fixed and only that activation's fields.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from torch import nn

from harness import DataInfo

from .activations import (
    LeakyFields,
    PReLUFields,
    SoftplusFields,
    StagesFields,
    baseline,
    replace_modules,
    swap_targets,
)
from .sparta import SpartaFields, rehome_shared, swap_to_sparta

ActivationFn = Literal["relu", "silu", "swish", "gelu", "softplus", "mish", "prelu", "leakyrelu",
                       "sparta"]

#: The fields only one ``fn`` reads.
OWN_FIELDS: dict[str, type[BaseModel]] = {"softplus": SoftplusFields, "leakyrelu": LeakyFields,
                                          "prelu": PReLUFields, "sparta": SpartaFields}


class ActivationParams(StagesFields, SoftplusFields, LeakyFields, PReLUFields, SpartaFields):
    fn: ActivationFn = Field(description="The activation that replaces every matched one "
                                         "(swish = silu = x·sigmoid(x)).")

    @model_validator(mode="after")
    def _only_relevant(self) -> ActivationParams:
        own = OWN_FIELDS.get(self.fn)
        allowed = {"fn", *StagesFields.model_fields, *(own.model_fields if own else ())}
        # compared with the defaults, not model_fields_set: the engine re-validates dumped params
        stray = sorted(name for name in set(type(self).model_fields) - allowed
                       if getattr(self, name) != type(self).model_fields[name].default)
        if stray:
            owners = {name: fn for fn, fields in OWN_FIELDS.items() for name in fields.model_fields}
            detail = ", ".join(f"{name} (fn = {owners[name]!r} only)" for name in stray)
            raise ValueError(f"not a parameter of fn = {self.fn!r}: {detail}")
        return self


class ReLUParams(StagesFields):
    pass


class SoftplusParams(StagesFields, SoftplusFields):
    pass


class LeakyReLUParams(StagesFields, LeakyFields):
    pass


class PReLUParams(StagesFields, PReLUFields):
    pass


class SpartaParams(StagesFields, SpartaFields):
    pass


def swap_activations(params: ActivationParams, model: nn.Module, info: DataInfo) -> nn.Module:
    """Replace every matched activation module of ``model`` (in place) and return it."""
    paths = swap_targets(model, params.stages)
    if params.fn == "sparta":
        swap_to_sparta(params, model, paths)
    else:
        make = baseline(params.fn, params)
        replace_modules(model, paths, lambda _path: make())
    rehome_shared(model)
    return model


def fixed(fn: str) -> Callable[[BaseModel, nn.Module, DataInfo], nn.Module]:
    """A shorthand variant: ``activation`` with ``fn`` fixed, the same factory underneath."""

    def factory(params: BaseModel, model: nn.Module, info: DataInfo) -> nn.Module:
        full = ActivationParams.model_validate({"fn": fn, **params.model_dump(exclude_unset=True)})
        return swap_activations(full, model, info)

    factory.__name__ = factory.__qualname__ = f"swap_to_{fn}"
    return factory
