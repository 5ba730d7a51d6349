"""What one row of the attack table says, and the one builder that turns a row into a factory.

A row names the torchattacks class and says how each of its keyword arguments comes from the
suite's parameters and threat model: a string names a params field (a rename when the keyword
differs), a function computes the value from the ``Call``. Rows whose construction is not just
that (PGD's margin loss, AutoAttack's sub-attack settings) give their own ``build``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from torch import nn

from harness import ThreatModel
from harness.toolkits import NORM_NAMES

from .running import ToolkitAttack


@dataclass(frozen=True)
class Call:
    """What a toolkit keyword can be computed from, at the time the object is built."""

    params: Any
    threat: ThreatModel
    num_classes: int


#: A params field name, or a function of the call.
Source = str | Callable[[Call], Any]


def eps(call: Call) -> float:
    return call.threat.eps


def alpha(call: Call) -> float:
    """The absolute step (each params model defines its default)."""
    return call.params.alpha(call.threat.eps)


def norm(call: Call) -> str:
    return NORM_NAMES[call.threat.norm]


def classes(call: Call) -> int:
    """The model's class count (rows that use it set ``needs_classes``): the toolkit's default
    is 10."""
    return call.num_classes


def same(*names: str) -> dict[str, Source]:
    """Keywords spelt like the params fields they come from."""
    return {name: name for name in names}


@dataclass(frozen=True)
class Row:
    """One registered attack: its entry metadata, its torchattacks class and its quirks."""

    name: str
    #: A torchattacks class name, or a function returning a fixed subclass (``patches``).
    toolkit: str | Callable[[], type]
    params: type[BaseModel]
    norms: tuple[str, ...]
    #: Toolkit keyword → where its value comes from.
    kwargs: Mapping[str, Source]
    description: str
    #: Set on the built object: settings the toolkit reads at call time but takes no keyword for.
    attributes: Mapping[str, Source] = field(default_factory=dict)
    #: ``build(row, call, model)`` for the rows ``construct`` cannot express.
    build: Callable[[Row, Call, nn.Module], Any] | None = None
    test_params: dict[str, Any] = field(default_factory=dict)
    minimum_norm: bool = False
    black_box: bool = False
    #: Reseeds the global torch RNG per call: run under ``preserved_rng``.
    reseeds: bool = False
    #: Takes ``n_classes``: count the model's classes before building.
    needs_classes: bool = False
    #: Fewest classes it runs with, or a function of the params.
    min_classes: int | Callable[[Any], int] = 2
    #: Hard-codes 3 input channels: fewer are padded (``PaddedChannels``), more refused.
    three_channels: bool = False
    #: Its targeted mode never asks for its targets: they are computed and passed as labels.
    targets_as_labels: bool = False

    def registration(self) -> dict[str, Any]:
        """The ``registry.add`` metadata of this row."""
        return {"params": self.params, "norms": self.norms, "description": self.description,
                "test_params": dict(self.test_params), "minimum_norm": self.minimum_norm,
                "black_box": self.black_box}


def value(source: Source, call: Call) -> Any:
    return getattr(call.params, source) if isinstance(source, str) else source(call)


def toolkit_class(row: Row) -> type:
    import torchattacks

    return getattr(torchattacks, row.toolkit) if isinstance(row.toolkit, str) else row.toolkit()


def keywords(row: Row, call: Call) -> dict[str, Any]:
    """The keyword arguments ``row`` gives its toolkit class for this call."""
    return {key: value(source, call) for key, source in row.kwargs.items()}


def construct(row: Row, call: Call, model: nn.Module) -> Any:
    """The torchattacks object of ``row``: its class called with the row's keywords, then the
    row's attributes set."""
    attack = toolkit_class(row)(model, **keywords(row, call))
    for key, source in row.attributes.items():
        setattr(attack, key, value(source, call))
    return attack


def factory(row: Row) -> Callable[[BaseModel, ThreatModel], ToolkitAttack]:
    """The factory registered for ``row``: a ``ToolkitAttack`` that builds the row's object per
    call (torchattacks pins the model's device at construction)."""
    build_row = row.build or construct

    def make(params: BaseModel, threat: ThreatModel) -> ToolkitAttack:
        def build(model: nn.Module, num_classes: int) -> Any:
            return build_row(row, Call(params, threat, num_classes), model)

        min_classes = row.min_classes(params) if callable(row.min_classes) else row.min_classes
        return ToolkitAttack(row.name, build, targeted=getattr(params, "targeted", "none"),
                             needs_classes=row.needs_classes, min_classes=min_classes,
                             reseeds=row.reseeds, three_channels=row.three_channels,
                             targets_as_labels=row.targets_as_labels)

    make.__name__ = make.__qualname__ = row.name.replace("-", "_")
    return make
