"""The suite file: a pydantic schema (unknown keys are errors) and loading with file + key paths."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.specs import AttackItem, ComponentItem, RecipeItem
from harness.tomlfile import Where, read_toml, validate


class EvaluationSettings(BaseModel):
    """How models are evaluated: which test examples and in what batches."""

    model_config = ConfigDict(extra="forbid")

    max_examples: int | None = Field(
        default=None, ge=1, description="First N test examples (None: the whole test split).")
    batch_size: int = Field(default=256, ge=1)
    mode: Literal["per-attack"] = Field(
        default="per-attack",
        description="per-attack: every attack runs on every clean-correct example.")


class Suite(BaseModel):
    """One experiment: datasets × architectures × recipes × seeds, evaluated against attacks."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, description="Defaults to the file name.")
    description: str = ""
    plugins: list[str] = Field(
        default_factory=list, description="Extra plugin folders, relative to the suite file.")
    catalogues: list[str] = Field(
        default_factory=list, description="Extra catalogue TOML files, relative to the suite file.")
    seeds: list[int] = Field(default=[0], min_length=1)
    device: str = Field(default="auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")
    datasets: list[ComponentItem] = Field(min_length=1)
    architectures: list[ComponentItem] = Field(min_length=1)
    recipes: list[RecipeItem] = Field(min_length=1)
    attacks: list[AttackItem] = Field(default_factory=list)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)


class LoadedSuite(BaseModel):
    """A validated suite with the file it came from (relative paths resolve against it)."""

    path: Path
    suite: Suite

    @property
    def name(self) -> str:
        return self.suite.name or self.path.stem

    def relative(self, item: str) -> Path:
        candidate = Path(item).expanduser()
        return candidate if candidate.is_absolute() else (self.path.parent / candidate)


def load_suite(path: str | Path) -> LoadedSuite:
    path = Path(path)
    data = read_toml(path, what="suite file")
    return LoadedSuite(path=path, suite=validate(Suite, data, Where(str(path))))
