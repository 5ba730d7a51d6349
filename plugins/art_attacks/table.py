"""What one row of the attack table says, and the one builder that turns a row into a factory.

A row names the ``art.attacks.evasion`` class and says how each of its keyword arguments comes
from the suite's parameters and threat model: a string names a params field (a rename when the
keyword differs), a function computes the value from the ``Call``, any other value is passed
as it is (``verbose=False``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from harness import ThreatModel
from harness.toolkits import NORM_ORDER

from .running import ArtAttack


@dataclass(frozen=True)
class Call:
    """What an ART keyword can be computed from."""

    params: Any
    threat: ThreatModel


#: A params field name, a function of the call, or a constant.
Source = str | Callable[[Call], Any] | bool | int


def eps(call: Call) -> float:
    return call.threat.eps


def alpha(call: Call) -> float:
    """The absolute step (``IterativeParams``' default: 2.5*eps/steps)."""
    return call.params.alpha(call.threat.eps)


def norm(call: Call) -> float:
    """The norm as ART takes it: its p (inf, 2, 1)."""
    return NORM_ORDER[call.threat.norm]


def targeted(call: Call) -> bool:
    return call.params.targeted != "none"


def same(*names: str) -> dict[str, Source]:
    """Keywords spelt like the params fields they come from."""
    return {name: name for name in names}


@dataclass(frozen=True)
class Row:
    """One registered attack: its entry metadata, its ART class and its quirks."""

    name: str
    #: The class name in ``art.attacks.evasion``.
    toolkit: str
    params: type[BaseModel]
    norms: tuple[str, ...]
    #: ART keyword → where its value comes from.
    kwargs: Mapping[str, Source]
    description: str
    #: The wrapper class, for attacks whose ``generate`` call needs more than ``ArtAttack``'s.
    runner: type[ArtAttack] = ArtAttack
    #: Extra keywords of ``runner``, resolved like ``kwargs``.
    options: Mapping[str, Source] = field(default_factory=dict)
    test_params: dict[str, Any] = field(default_factory=dict)
    minimum_norm: bool = False
    black_box: bool = False
    #: Fewest classes it runs with, or a function of the params.
    min_classes: int | Callable[[Any], int] = 2
    #: Defined on class probabilities: ART sees the softmax of the logits.
    probabilities: bool = False

    def registration(self) -> dict[str, Any]:
        """The ``registry.add`` metadata of this row."""
        return {"params": self.params, "norms": self.norms, "description": self.description,
                "test_params": dict(self.test_params), "minimum_norm": self.minimum_norm,
                "black_box": self.black_box}


def value(source: Source, call: Call) -> Any:
    if isinstance(source, str):
        return getattr(call.params, source)
    return source(call) if callable(source) else source


def resolved(sources: Mapping[str, Source], call: Call) -> dict[str, Any]:
    return {key: value(source, call) for key, source in sources.items()}


def construct(row: Row, call: Call, classifier: Any) -> Any:
    """The ART attack object of ``row`` on ``classifier``."""
    import art.attacks.evasion

    return getattr(art.attacks.evasion, row.toolkit)(classifier, **resolved(row.kwargs, call))


def factory(row: Row) -> Callable[[BaseModel, ThreatModel], ArtAttack]:
    """The factory registered for ``row``. Bounded unless minimum-norm; targeted and seeded when
    its params have those fields."""

    def make(params: BaseModel, threat: ThreatModel) -> ArtAttack:
        call = Call(params, threat)
        min_classes = row.min_classes(params) if callable(row.min_classes) else row.min_classes
        return row.runner(row.name, lambda classifier: construct(row, call, classifier), threat,
                          bounded=not row.minimum_norm,
                          targeted=getattr(params, "targeted", "none"),
                          seed=getattr(params, "seed", None), min_classes=min_classes,
                          probabilities=row.probabilities, **resolved(row.options, call))

    make.__name__ = make.__qualname__ = row.name.replace("-", "_")
    return make
