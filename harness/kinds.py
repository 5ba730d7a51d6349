"""The kinds of component, in one table that the registries, hooks, catalogues and CLI all read.

A kind's ``name`` is its plural (a suite key, a catalogue table, ``harness list NAME``); its
``singular`` is what messages call one of them. Recipes exist only as catalogue presets (a
defense plus training settings), so they have no registration hook.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    name: str
    singular: str
    hook: str | None  # the registration hook plugins implement; None for catalogue-only kinds
    presets: bool  # catalogue files may define named presets of this kind

    def __str__(self) -> str:
        return self.singular


KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    Kind("datasets", "dataset", "harness_register_datasets", presets=True),
    Kind("architectures", "architecture", "harness_register_architectures", presets=True),
    Kind("variants", "variant", "harness_register_variants", presets=False),
    Kind("attacks", "attack", "harness_register_attacks", presets=True),
    Kind("defenses", "defense", "harness_register_defenses", presets=False),
    Kind("recipes", "recipe", None, presets=True),
    Kind("metrics", "metric", "harness_register_metrics", presets=False),
)}

#: Kinds that plugins register factories of, and kinds that catalogues hold presets of.
REGISTERED = tuple(kind for kind in KINDS.values() if kind.hook)
CATALOGUED = tuple(kind for kind in KINDS.values() if kind.presets)
