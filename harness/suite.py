"""The suite file: a pydantic schema (unknown keys are errors) and loading with file + key paths."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness.errors import UserError
from harness.specs import ArchitectureItem, AttackItem, ComponentItem, Fp32Check, RecipeItem, Speed
from harness.tomlfile import Where, read_toml, relative_to, validate


class EvaluationSettings(BaseModel):
    """How models are evaluated: which test examples, in what batches, at what precision."""

    model_config = ConfigDict(extra="forbid")

    max_examples: int | None = Field(
        default=None, ge=1, description="First N test examples (None: the whole test split).")
    batch_size: int = Field(default=256, ge=1)
    mode: Literal["per-attack", "worst-case"] = Field(
        default="per-attack",
        description="per-attack: every attack runs on every clean-correct example; worst-case: "
                    "each attack runs only on the examples still robust after the previous ones "
                    "(AutoAttack style: cheaper, the last column is the worst case).")
    amp: bool | None = Field(default=None, description="Craft attacks under bf16 autocast "
                             "(verdicts and budget checks stay fp32/float64). Unset: on CUDA, "
                             "off elsewhere; true or false: on or off on every device.")
    channels_last: bool | None = Field(default=None, description="channels_last memory. Unset: "
                                       "on CUDA, off elsewhere; true or false: on every device.")
    compile: bool = Field(default=False, description="torch.compile the model the attacks run on.")
    fp32_check: int = Field(
        default=256, ge=0, description="When attacks run in bf16: the first N attacked examples "
        "of each eval cell are attacked again in fp32; 0 turns the check off.")
    fp32_tolerance: float = Field(
        default=0.03, ge=0, le=1, description="Largest accepted robust-accuracy gap (a "
        "fraction) between bf16 and fp32 on those examples before the bf16-mismatch flag.")

    def speed_on(self, device_type: str) -> Speed:
        return Speed.on(device_type, self.amp, self.channels_last, self.compile)

    def cross_check(self) -> Fp32Check | None:
        return Fp32Check(self.fp32_check, self.fp32_tolerance) if self.fp32_check else None


class Suite(BaseModel):
    """One experiment: datasets × architectures × recipes × seeds, evaluated against attacks."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, description="Defaults to the file name.")
    description: str = ""
    plugins: list[str] = Field(
        default_factory=list,
        description="Extra plugin folders or files, relative to the suite file.")
    catalogues: list[str] = Field(
        default_factory=list, description="Extra catalogue TOML files, relative to the suite file.")
    seeds: list[int] = Field(default=[0], min_length=1)
    device: str = "auto"
    datasets: list[ComponentItem] = Field(min_length=1)
    architectures: list[ArchitectureItem] = Field(min_length=1)
    recipes: list[RecipeItem] = Field(
        default_factory=list, description='Training recipes; architectures with weights are '
        'evaluated as they are (recipe "pretrained") and need none.')
    attacks: list[AttackItem] = Field(default_factory=list)
    metrics: list[ComponentItem] | None = Field(
        default=None, description="Architecture metrics (default: every metric marked default).")
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: list[int]) -> list[int]:
        repeated = sorted({s for s in seeds if seeds.count(s) > 1})
        if repeated:
            raise ValueError(f"seed {repeated[0]} is listed twice; list each seed once")
        return seeds

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str) -> str:
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", device):
            raise ValueError(f"device {device!r} is not one of auto, cpu, mps, cuda, cuda:N")
        return device


class LoadedSuite(BaseModel):
    """A validated suite with the file it came from (relative paths resolve against it)."""

    path: Path
    suite: Suite

    @property
    def name(self) -> str:
        return self.suite.name or self.path.stem

    def relative(self, item: str) -> Path:
        return relative_to(item, self.path.parent)

    def existing_paths(self, key: str) -> list[Path]:
        """The suite's ``plugins`` (folders or files) or ``catalogues`` entries, resolved; a
        missing one is an error."""
        plugins = key == "plugins"
        what = "plugin folder or file" if plugins else "catalogue file"
        paths = []
        for i, item in enumerate(getattr(self.suite, key)):
            path = self.relative(item)
            if not (path.exists() if plugins else path.is_file()):
                raise Where(str(self.path), (key, i)).error(
                    f"{what} {path} does not exist; paths are relative to the suite file")
            paths.append(path)
        return paths


def is_questions_data(data: dict[str, Any]) -> bool:
    """Whether parsed TOML is a study-questions file (``harness.questions``): ``[[study]]``
    tables and none of a suite's keys. Decided here so that every command loading a suite
    can tell the two apart without importing the questions' models."""
    return isinstance(data.get("study"), list) and not data.keys() & Suite.model_fields.keys()


def load_suite(path: str | Path) -> LoadedSuite:
    """The suite at ``path``; a questions file given where a suite is expected (``harness run
    suites/pilots/questions.toml``) is named as one instead of failing on its ``study`` key."""
    path = Path(path)
    data = read_toml(path, what="suite file")
    if is_questions_data(data):
        raise UserError(f"{path}: a questions file for 'harness analyze --questions', not a "
                        "suite; run the suites it names, then harness analyze RUN_DIR... "
                        f"--questions {path}")
    return LoadedSuite(path=path, suite=validate(Suite, data, Where(str(path))))
