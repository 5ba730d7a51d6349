"""Which modules are activations, how a swap replaces them, and the baseline activations.

Every activation *module* is replaced, recursively through ``named_children`` + ``setattr``:
torch's ReLU, ReLU6, LeakyReLU, PReLU, RReLU, ELU, CELU, SELU, GELU, SiLU, Mish, Softplus and
Hardswish, and timm's own classes, which are *not* subclasses of torch's
(``timm.layers.activations.GELU``, ``Swish``, ``Mish``, ``HardSwish``… and their ``*Me`` twins),
matched by class name. Gates are never touched: Sigmoid, Tanh, HardSigmoid and Softmax (the SE
blocks' gates) are not activations to swap. ``stages = ["backbone.stages.0", …]`` limits the
swap to the modules under those path prefixes (per-stage swaps); activations a model applies
functionally (``F.relu`` in ``forward``) cannot be reached by a module swap, and finding nothing
to replace is an error that says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from pydantic import Field
from torch import nn

from harness import Params, UserError

#: torch activation classes a swap replaces (subclasses included). Not Sigmoid/Tanh/Hardtanh/
#: Hardsigmoid/Softmax: those are gates or squashers (SE blocks), not ReLU-like activations.
TORCH_ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU,
    nn.SiLU, nn.Mish, nn.Softplus, nn.Hardswish,
)

#: Activation classes matched by name, for libraries whose classes do not subclass torch's
#: (timm 1.0: ``timm.layers.activations.GELU`` is a plain ``nn.Module``; measured: swapping
#: ``nn.GELU`` alone matched 0 of convnext_atto's 12 activations).
ACTIVATION_NAMES = frozenset({
    "ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU", "CELU", "SELU", "GELU", "GELUTanh",
    "QuickGELU", "SiLU", "Swish", "SwishMe", "Mish", "MishMe", "Softplus", "HardSwish",
    "Hardswish", "HardSwishMe", "HardMish", "HardMishMe", "Sparta",
})

#: Never swapped even if a subclass relation or name would say otherwise: gates.
GATE_NAMES = frozenset({"Sigmoid", "Tanh", "HardSigmoid", "Hardsigmoid", "HardSigmoidMe",
                        "Softmax", "Hardtanh"})


def is_activation(module: nn.Module) -> bool:
    """A ReLU-like activation module (torch's or, by class name, timm's); never a gate."""
    names = {cls.__name__ for cls in type(module).__mro__}
    if type(module).__name__ in GATE_NAMES:
        return False
    return isinstance(module, TORCH_ACTIVATIONS) or bool(names & ACTIVATION_NAMES)


def _under(path: str, prefixes: Iterable[str]) -> bool:
    return any(path == p or path.startswith(p + ".") for p in prefixes)


def find_activations(model: nn.Module, stages: list[str] | None = None) -> list[str]:
    """Paths of the activation modules a swap replaces, in module order (not inside them)."""
    found: list[str] = []

    def walk(module: nn.Module, prefix: str) -> None:
        for name, child in module.named_children():
            path = f"{prefix}{name}"
            if is_activation(child):
                if stages is None or _under(path, stages):
                    found.append(path)
            else:
                walk(child, path + ".")

    walk(model, "")
    return found


def _under_any(prefix: str, paths: list[str]) -> bool:
    return any(p == prefix or p.startswith(prefix + ".") for p in paths)


def swap_targets(model: nn.Module, stages: list[str] | None) -> list[str]:
    """The activation paths a swap replaces; a stage matching none, or no target, is an error."""
    paths = find_activations(model, stages)
    if stages is not None:
        every = find_activations(model)
        unmatched = [p for p in stages if not _under_any(p, every)]
        if unmatched:
            listed = ", ".join(every[:8]) + (" …" if len(every) > 8 else "")
            raise UserError(
                f"activation variant: stages {unmatched} match no activation module of "
                f"{type(model).__name__}; its activation modules are at: {listed or 'none'}")
    if not paths:
        raise UserError(
            f"activation variant: {type(model).__name__} has no activation module to replace "
            "(looked for torch's ReLU/ReLU6/LeakyReLU/PReLU/ELU/SELU/GELU/SiLU/Mish/Softplus/"
            "Hardswish and timm's GELU/Swish/Mish/HardSwish classes). It probably applies its "
            "activations functionally (F.relu or torch.relu inside forward), which a module swap "
            "cannot reach: give the architecture one activation module per use")
    return paths


def replace_modules(model: nn.Module, paths: list[str], make: Callable[[str], nn.Module]) -> None:
    """``setattr`` a new module at each path (``make(path)``), in the order given."""
    for path in paths:
        parent_path, _, name = path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        setattr(parent, name, make(path))


# --- the baselines' parameters and modules --------------------------------------------------------


class StagesFields(Params):
    stages: list[str] | None = Field(
        default=None, min_length=1,
        description='Module-path prefixes to swap under, e.g. ["backbone.stages.0"] (paths as in '
                    "model.named_modules()); default: every activation of the model.")


class SoftplusFields(Params):
    beta: float = Field(default=1.0, gt=0, description="Softplus sharpness: log(1+exp(βx))/β.")


class LeakyFields(Params):
    negative_slope: float = Field(default=0.01, ge=0, description="LeakyReLU slope for x < 0.")


class PReLUFields(Params):
    init: float = Field(default=0.25, description="PReLU's initial slope (one per layer).")


class BaselineParams(Protocol):
    """The fields a baseline activation reads (``ActivationParams`` has them all)."""

    beta: float
    negative_slope: float
    init: float


def baseline(fn: str, params: BaselineParams) -> Callable[[], nn.Module]:
    """A constructor of the (non-Sparta) activation ``fn``, one new module per call."""
    makers: dict[str, Callable[[], nn.Module]] = {
        "relu": nn.ReLU, "silu": nn.SiLU, "swish": nn.SiLU, "gelu": nn.GELU, "mish": nn.Mish,
        "softplus": lambda: nn.Softplus(beta=params.beta),
        "leakyrelu": lambda: nn.LeakyReLU(params.negative_slope),
        "prelu": lambda: nn.PReLU(init=params.init),
    }
    return makers[fn]
