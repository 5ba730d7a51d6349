"""What a plan is made of: resolved components and the cells built from them, each hashed.

A train cell is dataset × architecture × recipe × seed; an eval cell is a train cell × attack.
A cell's hash covers its fully resolved configuration and the versions that can change its
result (harness, torch, each plugin), so a finished cell is never recomputed and a changed one
always is. Nothing here looks anything up: these are plain values.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import torch

from harness.specs import FP32_EAGER, Fp32Check, Recipe, Speed
from harness.suite import EvaluationSettings, LoadedSuite, Suite
from harness.threat import ThreatModel
from harness.tomlfile import Where
from harness.version import __version__


def stable_hash(config: Any) -> str:
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


#: The recipe label of models evaluated with the weights they came with (never trained here).
PRETRAINED = "pretrained"


@dataclass(frozen=True)
class ResolvedWeights:
    """Weights to load into an architecture: a local file (None while a URL is not yet in the
    cache), its sha256, and how to read it. ``whole_model``: a harness checkpoint, loaded
    into the built model with its variants and normalization, not into the bare factory's."""

    sha256: str
    file: str | None = None
    url: str | None = None
    key: str | None = None
    strip: tuple[str, ...] = ()
    whole_model: bool = False

    def config(self) -> dict[str, Any]:  # where the file lives does not change the numbers
        return {"sha256": self.sha256, "key": self.key, "strip": list(self.strip),
                "whole_model": self.whole_model}


@dataclass(frozen=True)
class InputAdapter:
    """The normalization and input side a third-party model expects, applied inside it."""

    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    input_size: int | None = None

    def config(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "input_size": self.input_size}


@dataclass(frozen=True)
class Resolved:
    """A component as it will be built: registered factory, validated params, provenance."""

    kind: str
    label: str
    factory: str
    params: dict[str, Any]
    plugin: str
    version: str
    threat: ThreatModel | None = None  # attacks only
    minimum_norm: bool = False  # attacks only
    variants: tuple[Resolved, ...] = ()  # architectures only
    files: tuple[tuple[str, str], ...] = ()  # (param, sha256) of each LocalFile param
    source: str | None = None  # sha256 of the plugin's code, for plugins loaded from a folder
    #: where an attack's eps was written (the suite, or a catalogue preset): not hashed
    eps_where: Where | None = field(default=None, compare=False)
    weights: ResolvedWeights | None = None  # architectures only
    inputs: InputAdapter | None = None  # architectures only
    pretrained: bool = False  # architectures only: evaluated as built, never trained

    def config(self) -> dict[str, Any]:
        digested = dict(self.files)  # a file param is its content, wherever the file lives
        params = {k: v for k, v in self.params.items() if k not in digested}
        out: dict[str, Any] = {"factory": self.factory, "params": params,
                               "plugin": self.plugin, "version": self.version}
        if self.source:
            out["plugin_source_sha256"] = self.source
        if self.files:
            out["file_sha256"] = dict(self.files)
        if self.threat is not None:
            out["threat"] = self.threat.model_dump()
        if self.variants:
            out["variants"] = [v.config() for v in self.variants]
        if self.weights is not None:
            out["weights"] = self.weights.config()
        if self.inputs is not None:
            out["inputs"] = self.inputs.config()
        return out


@dataclass(frozen=True)
class ResolvedRecipe:
    label: str
    recipe: Recipe
    defense: Resolved
    attack: Resolved | None
    validation_attack: Resolved | None = None
    #: the recipe's amp/channels_last/compile as they run on the plan's device (``on_device``)
    speed: Speed = FP32_EAGER

    def on_device(self, device_type: str) -> ResolvedRecipe:
        return replace(self, speed=self.recipe.speed_on(device_type))

    def config(self) -> dict[str, Any]:
        settings = self.recipe.model_dump(
            mode="json", exclude={"description", "defense", "defense_params", "attack", "amp",
                                  "channels_last", "compile"})
        # What runs, not what was asked: amp/channels_last are off on CPU whatever the recipe
        # says, so a CPU cell keeps the hash it had before they defaulted to on for CUDA.
        settings.update(amp=self.speed.amp, channels_last=self.speed.channels_last)
        if self.speed.compile:
            settings["compile"] = True
        if settings.get("validation"):
            settings["validation"].pop("attack")
        config = {"settings": settings, "defense": self.defense.config(),
                  "attack": self.attack.config() if self.attack else None}
        if self.validation_attack is not None:
            config["validation_attack"] = self.validation_attack.config()
        return config


@dataclass(frozen=True)
class TrainCell:
    """Dataset × architecture × recipe × seed; ``recipe`` None for a pretrained model (its
    weights are evaluated as they are, so it has one cell per dataset, seed 0)."""

    dataset: Resolved
    architecture: Resolved
    recipe: ResolvedRecipe | None
    seed: int

    @property
    def recipe_label(self) -> str:
        return self.recipe.label if self.recipe is not None else PRETRAINED

    def config(self) -> dict[str, Any]:
        recipe = self.recipe.config() if self.recipe is not None else PRETRAINED
        return {"dataset": self.dataset.config(), "architecture": self.architecture.config(),
                "recipe": recipe, "seed": self.seed, "versions": engine_versions()}

    @cached_property
    def hash(self) -> str:
        return stable_hash(self.config())

    @property
    def labels(self) -> dict[str, Any]:
        return {"dataset": self.dataset.label, "architecture": self.architecture.label,
                "recipe": self.recipe_label, "seed": self.seed}

    def describe(self) -> str:
        return f"train {self.model_label()}"

    def model_label(self) -> str:
        """The model this cell trains: dataset / architecture / recipe / seed."""
        return (f"{self.dataset.label} / {self.architecture.label} / {self.recipe_label} / "
                f"seed {self.seed}")


@dataclass(frozen=True)
class EvalCell:
    train: TrainCell
    attack: Resolved
    max_examples: int | None
    batch_size: int
    mode: str = "per-attack"
    #: worst-case mode: the attacks that ran before this one in the chain (their configs)
    after: tuple[dict[str, Any], ...] = ()
    #: the evaluation's amp/channels_last/compile on the plan's device
    speed: Speed = FP32_EAGER
    #: with amp: the fp32 re-run that checks it (a validity check: not hashed)
    fp32_check: Fp32Check | None = None

    def config(self) -> dict[str, Any]:
        config = {"train": self.train.hash, "attack": self.attack.config(),
                  "max_examples": self.max_examples, "batch_size": self.batch_size,
                  "versions": engine_versions()}
        if self.mode != "per-attack":
            config.update(mode=self.mode, after=list(self.after))
        if self.speed.config():  # fp32 eager evaluations keep their hashes
            config["speed"] = self.speed.config()
        return config

    @cached_property
    def hash(self) -> str:
        return stable_hash(self.config())

    @property
    def seed(self) -> int:
        """The attack's seed (``seed_everything`` once, before its first batch): part of the
        documented contract, so a stored number can be reproduced with the toolkit alone."""
        return int(self.hash[:8], 16)

    def describe(self) -> str:
        return f"attack {self.attack.label} on {self.train.model_label()}"


@dataclass(frozen=True)
class MetricSpec:
    """A metric as run on every trained model; its hash keys the stored values."""

    metric: Resolved
    max_examples: int | None

    @cached_property
    def hash(self) -> str:
        return stable_hash({"metric": self.metric.config(), "max_examples": self.max_examples,
                            "versions": engine_versions()})


@dataclass
class Plan:
    suite: LoadedSuite
    train_cells: list[TrainCell] = field(default_factory=list)
    eval_cells: list[EvalCell] = field(default_factory=list)
    attacks: list[Resolved] = field(default_factory=list)
    metrics: list[MetricSpec] = field(default_factory=list)

    @property
    def settings(self) -> Suite:
        return self.suite.suite

    @property
    def evaluation(self) -> EvaluationSettings:
        return self.suite.suite.evaluation

    @property
    def attack_labels(self) -> list[str]:
        return [a.label for a in self.attacks]

    def evals_of(self, cell: TrainCell) -> list[EvalCell]:
        return [e for e in self.eval_cells if e.train.hash == cell.hash]


def engine_versions() -> dict[str, str]:
    return {"harness": __version__, "torch": torch.__version__.split("+")[0]}
