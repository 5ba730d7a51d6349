"""Threat models, eps parsing ("8/255") and the engine-side budget check every attack batch passes."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

import torch
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from harness.errors import ContractViolation

Norm = Literal["linf", "l2", "l1", "l0"]
NORM_ORDER: dict[str, float] = {"linf": math.inf, "l2": 2.0, "l1": 1.0, "l0": 0.0}

#: Relative and absolute slack of the budget check: float32 projections land a hair above eps.
REL_TOL = 1e-6
ABS_TOL = 1e-7


def _product(text: str) -> float:
    """Evaluate '0.8/255' or '2.5*1/10' left to right; ValueError if it is anything else."""
    tokens = re.split(r"([*/])", text)
    value = float(tokens[0])
    for op, number in zip(tokens[1::2], tokens[2::2], strict=True):
        value = value * float(number) if op == "*" else value / float(number)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def parse_eps(value: object) -> float:
    """Accept eps as the user writes it: 0.1, 1, "8/255", "0.5"."""
    if isinstance(value, bool):
        raise ValueError("eps must be a number or a fraction such as \"8/255\", not a boolean")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.replace(" ", "")
        try:
            if text.count("/") > 1 or "*" in text:
                raise ValueError(text)
            return _product(text)
        except (ValueError, ZeroDivisionError):
            raise ValueError(
                f"eps {value!r} is not a number or a fraction such as \"8/255\""
            ) from None
    raise ValueError(f"eps must be a number or a fraction such as \"8/255\", got {value!r}")


#: A budget as users write it: 0.03, "8/255"; the JSON Schema says so, for editors.
Eps = Annotated[float, BeforeValidator(parse_eps, json_schema_input_type=float | str)]


class StepSize(BaseModel):
    """An attack step: absolute ("2/255", 0.01) or relative to eps ("eps/8", "0.075*eps").

    One field for both forms, so a suite can override a preset's step either way.
    """

    model_config = ConfigDict(frozen=True)

    value: float = Field(gt=0)
    relative: bool = False

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, raw: Any) -> Any:
        if isinstance(raw, dict | StepSize):
            return raw
        if isinstance(raw, str) and "eps" in raw:
            text = raw.replace(" ", "")
            if text.count("eps") != 1:
                raise ValueError(f"step size {raw!r}: write eps once, e.g. \"eps/8\"")
            try:
                factor = _product(text.replace("eps", "1"))
            except (ValueError, ZeroDivisionError):
                raise ValueError(
                    f"step size {raw!r} is not a multiple of eps such as \"eps/8\" or "
                    "\"0.075*eps\"") from None
            return {"value": factor, "relative": True}
        try:
            return {"value": parse_eps(raw)}
        except ValueError:
            raise ValueError(f"step size {raw!r} is not a number, a fraction such as \"2/255\" "
                             "or a multiple of eps such as \"eps/8\"") from None

    def absolute(self, eps: float) -> float:
        return self.value * eps if self.relative else self.value


class ThreatModel(BaseModel):
    """Where an attack may move an input: an Lp ball of radius eps around it, inside [0,1]."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    norm: Norm
    eps: Eps

    def describe(self) -> str:
        return f"{self.norm} eps={self.eps:.6g}"


def check_eps_unit(norm: str, eps: float, input_shape: tuple[int, ...]) -> str | None:
    """Why eps cannot be meant for inputs in [0,1] of this shape, or None when it is plausible."""
    dims = math.prod(input_shape)
    if eps < 0 or not math.isfinite(eps):
        return f"eps must be a finite number >= 0, got {eps:g}"
    if norm == "linf" and eps > 1:
        return (
            f"eps = {eps:g} exceeds the whole [0,1] pixel range of a linf attack; "
            f"write it in [0,1] units, e.g. \"{eps:g}/255\""
        )
    if norm == "l2" and eps > math.sqrt(dims):
        return (
            f"eps = {eps:g} exceeds the l2 diameter of the [0,1] input space "
            f"({math.sqrt(dims):.3g} for inputs of shape {tuple(input_shape)})"
        )
    if norm in ("l1", "l0") and eps > dims:
        return f"eps = {eps:g} exceeds the {dims} input dimensions of shape {tuple(input_shape)}"
    return None


def perturbation_norms(x: torch.Tensor, x_adv: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-example ‖x_adv − x‖_p, computed in float64 so the check is not fooled by rounding."""
    delta = (x_adv.detach().double() - x.detach().double()).flatten(1)
    if norm == "l0":
        return (delta != 0).sum(dim=1).double()
    return torch.linalg.vector_norm(delta, ord=NORM_ORDER[norm], dim=1)


def within_budget(norms: torch.Tensor, eps: float) -> torch.Tensor:
    """Which perturbation norms lie inside eps, with the float tolerance of the budget check."""
    return norms <= eps * (1 + REL_TOL) + ABS_TOL


def check_adversarial_batch(
    x: torch.Tensor, x_adv: torch.Tensor, threat: ThreatModel, *, bounded: bool = True
) -> torch.Tensor:
    """Raise ContractViolation unless x_adv is a valid answer; return the per-example norms.

    Checked: same shape and dtype, finite, inside [0,1], and (for bounded attacks) within eps
    up to a tiny float tolerance. Minimum-norm attacks pass ``bounded=False``: their examples
    beyond eps are legitimate outputs that the scorer counts as not broken.
    """
    if not isinstance(x_adv, torch.Tensor):
        raise ContractViolation(f"attack returned {type(x_adv).__name__}, expected a torch.Tensor")
    if x_adv.shape != x.shape or x_adv.dtype != x.dtype:
        raise ContractViolation(
            f"attack returned shape {tuple(x_adv.shape)} {x_adv.dtype}, "
            f"expected {tuple(x.shape)} {x.dtype}"
        )
    finite = torch.isfinite(x_adv).flatten(1).all(dim=1)
    norms = perturbation_norms(x, x_adv, threat.norm)
    over = ~within_budget(norms, threat.eps) if bounded else torch.zeros_like(finite)
    # One host read per batch (a GPU sync), not one per check.
    non_finite, low, high, n_over, largest = torch.stack([
        (~finite).sum().double(), x_adv.min().double(), x_adv.max().double(),
        over.sum().double(), norms.max().double()]).tolist()
    if non_finite:
        raise ContractViolation(f"attack returned non-finite values for {int(non_finite)} example(s)")
    if low < 0.0 or high > 1.0:
        raise ContractViolation(
            f"attack left the input range [0,1]: values span [{low:.6g}, {high:.6g}]"
        )
    if n_over:
        raise ContractViolation(
            f"attack exceeded its budget ({threat.describe()}): {int(n_over)} example(s) "
            f"up to {largest:.6g}"
        )
    return norms
