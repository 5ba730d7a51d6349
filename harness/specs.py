"""The pydantic models of what users write: component references, presets and recipes.

Used both by catalogue files (``registries/*.toml``) and suites; every model forbids unknown
keys so a typo is an error, not a silently ignored setting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from harness.threat import Eps, Norm, parse_eps


def _eps_list(value: Any) -> Any:
    """eps = 0.1 and eps = [0.1] mean the same; a list gives one attack per value."""
    if not isinstance(value, list):
        return [parse_eps(value)]
    if not value:
        raise ValueError("eps list is empty; give at least one value")
    return value


def _name_to_table(value: Any) -> Any:
    """Let a list item be a bare name: "pgd20-linf-8" means {name = "pgd20-linf-8"}."""
    return {"name": value} if isinstance(value, str) else value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComponentRef(_Strict):
    """A suite's reference to a preset or a registered factory, with parameter overrides."""

    name: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None


class AttackRef(ComponentRef):
    """An attack reference; ``eps`` may be a list, which expands into one attack per value."""

    norm: Norm | None = None
    eps: Annotated[list[Eps], BeforeValidator(_eps_list, json_schema_input_type=Eps | list[Eps])
                   ] | None = None


class RecipeRef(BaseModel):
    """A recipe preset by name, with any ``Recipe`` field overridden inline.

    A name that is not a preset defines a new recipe inline; it must then give ``defense``.
    """

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1)
    label: str | None = None


class VariantRef(_Strict):
    """A modification applied to a built architecture (activation swap, input upsampling…)."""

    name: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)


VariantItem = Annotated[VariantRef, BeforeValidator(_name_to_table)]


class Weights(_Strict):
    """Trained weights for an architecture: a file, a URL (with its sha256), or a model a
    harness run trained. An architecture with weights is evaluated, never trained."""

    path: str | None = Field(default=None, description="A .pt/.pth/.safetensors file, relative "
                             "to the file that names it.")
    url: str | None = Field(default=None, description="Downloaded once into the cache folder "
                            "($HARNESS_CACHE); needs sha256.")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$",
                               description="Checked whenever the file is used.")
    key: str | None = Field(default=None, description='The entry holding the state dict, e.g. '
                            '"state_dict" or "model".')
    strip: list[str] = Field(default_factory=list, description='Key prefixes to remove, e.g. '
                             '["module."] for DataParallel checkpoints.')
    run: str | None = Field(default=None, description="A harness output folder, e.g. "
                            '"runs/quickstart", with cell = ...')
    cell: str | None = Field(default=None, description="That run's train cell: its hash (or a "
                             'prefix) or "architecture/recipe/seed".')

    @model_validator(mode="after")
    def _one_source(self) -> Weights:
        sources = [name for name in ("path", "url", "run") if getattr(self, name)]
        if len(sources) != 1:
            raise ValueError("give exactly one of path, url or run (with cell)")
        if self.url and not self.sha256:
            raise ValueError("a url needs its sha256 (sha256 = \"…\"), checked on every use")
        if bool(self.run) != bool(self.cell):
            raise ValueError('run and cell go together: run = "runs/x", cell = "<hash>"')
        return self


class ArchitectureSettings(_Strict):
    """What an architecture entry may say besides its factory: variants, weights, and the
    normalization and input size a third-party model expects."""

    variants: list[VariantItem] = Field(default_factory=list)
    weights: Weights | None = None
    mean: list[float] | None = Field(default=None, description="Normalization the model "
                                     "expects on [0,1] inputs (applied inside), with std.")
    std: list[float] | None = None
    input_size: int | None = Field(default=None, ge=1, description="Side the model expects: "
                                   "inputs are resized to it inside the model.")

    @model_validator(mode="after")
    def _mean_with_std(self) -> ArchitectureSettings:
        if (self.mean is None) != (self.std is None):
            raise ValueError("mean and std go together")
        return self


class ArchitectureRef(ComponentRef, ArchitectureSettings):
    """An architecture with variants applied in order, after the preset's own variants."""


ComponentItem = Annotated[ComponentRef, BeforeValidator(_name_to_table)]
ArchitectureItem = Annotated[ArchitectureRef, BeforeValidator(_name_to_table)]
AttackItem = Annotated[AttackRef, BeforeValidator(_name_to_table)]
RecipeItem = Annotated[RecipeRef, BeforeValidator(_name_to_table)]


class FactoryPreset(_Strict):
    """A named, parameterised use of a registered factory (an entry of a catalogue file)."""

    factory: str
    params: dict[str, Any] = Field(default_factory=dict)
    description: str = ""


class ArchitecturePreset(FactoryPreset, ArchitectureSettings):
    """A named architecture: a factory with params, variants, and optional weights."""


class AttackPreset(FactoryPreset):
    norm: Norm
    eps: Eps = Field(ge=0)


class TrainAttack(_Strict):
    """The attack a defense trains against, inline in a recipe (or a preset name)."""

    name: str
    norm: Norm | None = None
    eps: Eps | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class Validation(_Strict):
    """A held-out split of the training set for per-epoch robust accuracy and best-checkpoint
    selection (never the test set)."""

    fraction: float = Field(default=0.1, gt=0, lt=1)
    attack: Annotated[TrainAttack, BeforeValidator(_name_to_table)] | None = Field(
        default=None, description="Probe attack (default: the recipe's training attack).")
    max_examples: int = Field(default=512, ge=1, description="Examples probed per epoch.")
    start_epoch: int = Field(default=1, ge=1, description="Best selection starts at this epoch.")


class Recipe(_Strict):
    """How to train: the defense and its attack, optimizer, schedule, augmentation, selection."""

    description: str = ""
    defense: str = "standard"
    defense_params: dict[str, Any] = Field(default_factory=dict)
    attack: Annotated[TrainAttack, BeforeValidator(_name_to_table)] | None = None
    epochs: int = Field(ge=1)
    batch_size: int = Field(default=128, ge=1)
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = Field(default=0.1, gt=0)
    momentum: float = Field(default=0.9, ge=0, lt=1, description="SGD momentum.")
    nesterov: bool = False
    betas: tuple[float, float] = Field(default=(0.9, 0.999), description="Adam/AdamW betas.")
    weight_decay: float = Field(default=5e-4, ge=0)
    schedule: Literal["multistep", "cosine", "cyclic", "constant"] = Field(
        default="multistep", description="multistep: ×gamma at each milestone epoch; cosine: "
        "to min_lr after warm-up; cyclic: linear up to lr at cycle_peak, then down to 0.")
    milestones: list[int] = Field(default_factory=list)
    gamma: float = Field(default=0.1, gt=0)
    warmup_epochs: float = Field(default=0, ge=0)
    min_lr: float = Field(default=0, ge=0)
    cycle_peak: float = Field(default=0.4, gt=0, lt=1)
    grad_clip: float | None = Field(default=None, gt=0)
    ema: float | None = Field(default=None, gt=0, lt=1, description="EMA decay of the weights.")
    augment: Literal["none", "crop-flip", "autoaugment", "autoaugment-imagenet"] = "none"
    crop_padding: int = Field(default=4, ge=0)
    validation: Validation | None = None
    checkpoint: Literal["last", "best"] = Field(
        default="last", description="Weights evaluated: the last epoch's, or the best by "
        "validation robust accuracy (both are kept).")
    attack_bn: Literal["eval", "train"] = Field(
        default="eval", description="BatchNorm mode while crafting training attacks.")
    amp: bool | None = Field(default=None, description="bf16 autocast for training and its "
                             "attacks. Unset: on CUDA, off elsewhere; true or false: on or off "
                             "on every device (CPUs with native bf16 gain from it too).")
    channels_last: bool | None = Field(default=None, description="channels_last memory. Unset: "
                                       "on CUDA, off elsewhere; true or false: on every device.")
    compile: bool = Field(default=False, description="torch.compile the model, shared by the "
                          "training step and the training attack (any device).")

    def speed_on(self, device_type: str) -> Speed:
        return Speed.on(device_type, self.amp, self.channels_last, self.compile)

    @model_validator(mode="after")
    def _best_needs_validation(self) -> Recipe:
        if self.checkpoint == "best" and self.validation is None:
            raise ValueError('checkpoint = "best" needs a validation split; add '
                             "validation = { fraction = 0.1 }")
        return self


@dataclass(frozen=True)
class Speed:
    """What a cell runs with, resolved for the device it is planned for.

    ``amp`` and ``channels_last`` left unset are on for CUDA and off elsewhere, so a CPU cell
    runs, and is hashed, exactly as before they existed, on every CPU alike; set explicitly they
    apply on any device (a CPU with native bf16, such as AVX512-BF16 or AMX, trains 1.3–1.8×
    faster with both, measured in ``benchmarks/training.py``). ``compile`` applies on any
    device. Cells hash ``config()``: what actually runs.
    """

    amp: bool = False
    channels_last: bool = False
    compile: bool = False

    @classmethod
    def on(cls, device_type: str, amp: bool | None, channels_last: bool | None,
           compile: bool) -> Speed:
        cuda = device_type == "cuda"
        return cls(cuda if amp is None else amp,
                   cuda if channels_last is None else channels_last, compile)

    def config(self) -> dict[str, bool]:
        """Only the settings that are on: fp32 eager NCHW is the unmarked baseline."""
        return {name: True for name, on in asdict(self).items() if on}


#: fp32, eager, NCHW: every cell planned for a CPU, and the engine's own side computations.
FP32_EAGER = Speed()


@dataclass(frozen=True)
class Fp32Check:
    """A bf16 evaluation's honesty check: the first ``examples`` attacked examples of each eval
    cell are attacked again in fp32; a robust-accuracy gap above ``tolerance`` is flagged."""

    examples: int
    tolerance: float


class CatalogueFile(_Strict):
    """The layout of a ``registries/*.toml`` file: presets grouped by kind."""

    datasets: dict[str, FactoryPreset] = Field(default_factory=dict)
    architectures: dict[str, ArchitecturePreset] = Field(default_factory=dict)
    attacks: dict[str, AttackPreset] = Field(default_factory=dict)
    recipes: dict[str, Recipe] = Field(default_factory=dict)
