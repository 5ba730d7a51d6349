"""Architecture variants: activation swaps (including Sparta) and input upsampling.

Each variant is ``factory(params, model, info) -> nn.Module`` applied to a built architecture,
in the order a suite lists them::

    architectures = [{ name = "resnet18", variants = [
        "sparta", { name = "upsample", params = { scale = 2 } }] }]

**Activation swap** (``activation`` with ``fn = ...``, or the shorthands ``relu``, ``silu``,
``gelu``, ``softplus``, ``mish``, ``prelu``, ``leakyrelu``, ``sparta``). Every activation
*module* is replaced, recursively through ``named_children`` + ``setattr``: torch's ReLU,
ReLU6, LeakyReLU, PReLU, RReLU, ELU, CELU, SELU, GELU, SiLU, Mish, Softplus and Hardswish, and
timm's own classes, which are *not* subclasses of torch's (``timm.layers.activations.GELU``,
``Swish``, ``Mish``, ``HardSwish``… and their ``*Me`` twins), matched by class name. Gates
are never touched: Sigmoid, Tanh, HardSigmoid and Softmax (the SE blocks' gates) are not
activations to swap. ``stages = ["backbone.stages.0", …]`` limits the swap to the modules
under those path prefixes (per-stage swaps); activations a model applies functionally
(``F.relu`` in ``forward``) cannot be reached by a module swap, and finding nothing to
replace is an error that says so.

**Sparta** (Guo et al., "Sparta: Spatially Attentive and Adversarially Robust Activation",
arXiv 2105.08269). The paper's equation was not reachable; what its abstract establishes is a
ReLU extended by a learned *spatial attention*, so that the activation is spatially varying
and input-dependent, trained jointly with the CNN, and transferable as a fixed function to
another CNN (ResNet-18 → ResNet-34) or dataset (CIFAR-10 → SVHN). This plugin implements::

    a(x) = ReLU(x) · (1 + α · tanh(conv_k×k([mean_c(x); max_c(x)])))

where ``mean_c``/``max_c`` pool the incoming (pre-activation) feature map over channels into
a 2×H×W map, ``conv_k×k`` is a 2→1 channel convolution with bias and ``k//2`` zero padding
(CBAM's spatial-attention layout), and α is a learned scalar initialised to 0, so Sparta is
*exactly* ReLU at initialisation (bit-identical outputs) and learns how far to depart from
it. The parameters — ``conv.weight`` (1, 2, k, k), ``conv.bias`` (1,), ``alpha`` (1,) — do
not depend on the channel count, so one parameter set works in any layer of any CNN.
(N, C) inputs (an FC layer's ReLU) are treated as 1×1 maps; other ranks are an error.

* ``shared = true`` (default): one parameter set for all replaced layers. It is registered
  once, on the first replaced activation (``<path>.sparta.*``); the others hold an
  unregistered reference to it, so the state_dict holds it once (safetensors refuses tensors
  shared between keys) and ``deepcopy``/EMA/``.to()`` keep the sharing. If a later swap
  replaces that first activation, the next one sharing the set becomes its owner.
* ``shared = false``: a set per layer, at ``<activation path>.sparta.*``.
* ``freeze = true``: the Sparta parameters get ``requires_grad = False`` (optimizers skip
  them, so a training step leaves them unchanged).
* ``load = "file.safetensors"``: initialise from a file written by ``export_sparta`` *or*
  directly from a harness checkpoint (``runs/<suite>/checkpoints/<hash>.safetensors``, the
  whole model's state_dict): the Sparta keys are picked out by their suffix
  ``sparta.conv.weight`` / ``sparta.conv.bias`` / ``sparta.alpha``. A file with one set is
  broadcast to every layer; a file with a set per layer needs ``shared = false`` and maps
  sets to layers by module path (``match = "name"``) or by relative depth (``match =
  "order"``: the i-th of N layers takes set round(i·(M−1)/(N−1)) of M, in the file's recorded
  forward order, else the natural order of the paths). A relative path is taken from the
  working directory, and checked when the suite is validated. The file's content is part of
  the cell hash (``load`` is a ``harness.LocalFile``); ``load_sha256`` also pins which content
  the suite expects.

Exported files (``export_sparta(model_or_state_dict, path)``) hold ``sparta.conv.weight``,
``sparta.conv.bias`` and ``sparta.alpha`` for a single set, or ``<activation path>.sparta.*``
per layer, with metadata ``format = "sparta"``, ``kernel_size`` and ``order`` (JSON list of
the layer paths in forward order). A transfer in two suites: train ResNet-18 with
``variants = ["sparta"]``, read its train-cell hash from ``harness run A.toml --dry-run``,
then in suite B use ``{ name = "sparta", params = { load =
"runs/A/checkpoints/<hash>.safetensors", freeze = true } }`` on ResNet-34 or another dataset.

**Input upsampling** (``upsample``): the larger-feature-map study (Xu et al., arXiv
2202.12435, rcm's ``ADArch``): normalise → ``F.interpolate(scale, mode)`` → backbone, inside
the model, so attacks still work on the original resolution. On a ``harness.normalized``
model (a ``Normalize`` at ``model.normalize`` followed by ``model.backbone``) the
interpolation is fused into that ``normalize`` module (same state_dict keys); any other model
is wrapped whole, interpolating its [0,1] input before it. For a model that starts with a
per-channel affine normalization the two orders are the same function (interpolation weights
sum to one), up to float rounding. A ``Linear`` layer sized for the original maps (a
Flatten → Linear head such as the small CNN's) is re-sized for the larger maps with PyTorch's
default initialisation (the model is untrained when variants run); a model that still cannot
take the larger input (a ViT with a fixed ``img_size``) is an error naming the reason.
"""

from __future__ import annotations

import glob
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from torch import nn

from harness import DataInfo, LocalFile, Normalize, UserError, hookimpl
from harness.toolkits import kept_modes

__version__ = "1.0"

# --- activation matching --------------------------------------------------------------------------

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


def replace_modules(model: nn.Module, paths: list[str], make: Callable[[str], nn.Module]) -> None:
    """``setattr`` a new module at each path (``make(path)``), in the order given."""
    for path in paths:
        parent_path, _, name = path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        setattr(parent, name, make(path))


# --- Sparta ---------------------------------------------------------------------------------------


class SpartaAttention(nn.Module):
    """Sparta's parameters and spatial gate 1 + α·tanh(conv([mean_c; max_c])); shapes fixed by k."""

    def __init__(self, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=True)
        self.alpha = nn.Parameter(torch.zeros(1))  # 0: exactly ReLU at initialisation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return 1 + self.alpha * torch.tanh(self.conv(pooled))


class Sparta(nn.Module):
    """ReLU(x) times a learned, input-dependent spatial gate (see the module docstring).

    Owns its ``SpartaAttention`` as ``self.sparta`` unless ``shared_with`` names the activation
    that owns a shared one; then it keeps an unregistered reference (one state_dict entry).
    """

    def __init__(self, attention: SpartaAttention, shared_with: str | None = None) -> None:
        super().__init__()
        self.shared_with = shared_with
        if shared_with is None:
            self.sparta = attention
        else:  # bypass Module.__setattr__: not a submodule, so not a second state_dict entry
            object.__setattr__(self, "_shared_attention", attention)

    @property
    def attention(self) -> SpartaAttention:
        return self.sparta if self.shared_with is None else self.__dict__["_shared_attention"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            gate = self.attention(x)
        elif x.dim() == 2:  # an FC layer's activation: its features as a 1×1 map
            gate = self.attention(x[:, :, None, None]).flatten(1)
        else:
            raise ValueError(f"Sparta needs (N, C, H, W) feature maps or (N, C) features, got "
                             f"shape {tuple(x.shape)}; limit the swap with stages = [...]")
        return F.relu(x) * gate

    def extra_repr(self) -> str:
        return "" if self.shared_with is None else f"shares the parameters of {self.shared_with!r}"


SPARTA_KEY = re.compile(r"^(?P<prefix>(?:.*\.)?)sparta\.(?P<name>conv\.weight|conv\.bias|alpha)$")
SPARTA_NAMES = ("conv.weight", "conv.bias", "alpha")


def _natural(path: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]


def sparta_sets(state: Mapping[str, torch.Tensor], source: str = "state dict"
                ) -> dict[str, dict[str, torch.Tensor]]:
    """Sparta parameter sets of a state dict: ``{layer path: {"conv.weight": …, …}}``.

    The path is ``""`` for an exported single set. Keys are picked by suffix, so a harness
    checkpoint (the whole model's state_dict) works as well as an exported file.
    """
    sets: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        match = SPARTA_KEY.match(key)
        if match:
            sets.setdefault(match["prefix"].rstrip("."), {})[match["name"]] = value
    for path, tensors in sets.items():
        missing = [n for n in SPARTA_NAMES if n not in tensors]
        weight = tensors.get("conv.weight")
        if missing or weight is None or weight.dim() != 4 or weight.shape[:2] != (1, 2) or \
                tuple(tensors["conv.bias"].shape) != (1,) or tuple(tensors["alpha"].shape) != (1,):
            where = f"{path}.sparta" if path else "sparta"
            raise UserError(f"{source}: {where}.* is not a Sparta parameter set (expected "
                            f"conv.weight (1, 2, k, k), conv.bias (1,), alpha (1,); missing "
                            f"{missing or 'none'})")
    return sets


def _sparta_modules(model: nn.Module) -> list[tuple[str, SpartaAttention]]:
    """(owner path, attention) of each distinct Sparta parameter set, in module order."""
    return [(name[:-len(".sparta")] if name.endswith(".sparta") else name, module)
            for name, module in model.named_modules() if isinstance(module, SpartaAttention)]


def export_sparta(source: nn.Module | Mapping[str, torch.Tensor], path: str | Path
                  ) -> dict[str, torch.Tensor]:
    """Write the Sparta parameters of a model or state dict to a safetensors file.

    Keys: ``sparta.conv.weight``, ``sparta.conv.bias``, ``sparta.alpha`` for a single (shared)
    set, else ``<activation path>.sparta.<name>`` per layer; metadata ``format = "sparta"``,
    ``kernel_size`` and ``order`` (the layer paths in forward order). Returns what it wrote.
    """
    from safetensors.torch import save_file

    if isinstance(source, nn.Module):
        sets = {owner: {n: t.detach() for n, t in attention.state_dict().items()}
                for owner, attention in _sparta_modules(source)}
    else:
        sets = sparta_sets(source)
    if not sets:
        raise UserError("export_sparta: no Sparta parameters found (no '*.sparta.conv.weight' "
                        "key); was the model built with the 'sparta' variant?")
    if len(sets) == 1:
        tensors = {f"sparta.{n}": t for n, t in next(iter(sets.values())).items()}
    else:
        tensors = {f"{owner}.sparta.{n}": t for owner, s in sets.items() for n, t in s.items()}
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    kernel = next(iter(sets.values()))["conv.weight"].shape[-1]
    order = list(sets) if len(sets) > 1 else [""]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"format": "sparta", "kernel_size": str(kernel),
                                            "order": json.dumps(order)})
    return tensors


def read_sparta(path: str | Path) -> tuple[list[tuple[str, dict[str, torch.Tensor]]], int]:
    """The Sparta sets of an exported file or a harness checkpoint, in forward order, and k."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        state = load_file(str(path))
    except Exception as exc:  # a truncated or non-safetensors file: a user mistake, said plainly
        raise UserError(f"sparta load: cannot read {path} as safetensors ({exc})") from None
    sets = sparta_sets(state, str(path))
    if not sets:
        raise UserError(f"sparta load: {path} holds no Sparta parameters (no key ending in "
                        "'sparta.conv.weight'); point it at a file from export_sparta or at the "
                        "checkpoint of a model trained with the 'sparta' variant")
    recorded = json.loads(metadata.get("order", "[]")) if metadata.get("format") == "sparta" else []
    order = recorded if sorted(recorded) == sorted(sets) else sorted(sets, key=_natural)
    kernels = {s["conv.weight"].shape[-1] for s in sets.values()}
    if len(kernels) != 1:
        raise UserError(f"sparta load: {path} mixes kernel sizes {sorted(kernels)}")
    return [(p, sets[p]) for p in order], kernels.pop()


# --- activation swap ------------------------------------------------------------------------------

ActivationFn = Literal["relu", "silu", "swish", "gelu", "softplus", "mish", "prelu", "leakyrelu",
                       "sparta"]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Stages(_Params):
    stages: list[str] | None = Field(
        default=None, min_length=1,
        description='Module-path prefixes to swap under, e.g. ["backbone.stages.0"] (paths as in '
                    "model.named_modules()); default: every activation of the model.")


class _SoftplusFields(_Params):
    beta: float = Field(default=1.0, gt=0, description="Softplus sharpness: log(1+exp(βx))/β.")


class _LeakyFields(_Params):
    negative_slope: float = Field(default=0.01, ge=0, description="LeakyReLU slope for x < 0.")


class _PReLUFields(_Params):
    init: float = Field(default=0.25, description="PReLU's initial slope (one per layer).")


class _SpartaFields(_Params):
    kernel_size: int | None = Field(
        default=None, ge=1, le=15,
        description="Odd k of the 2→1 attention conv; default 3, or the loaded file's.")
    shared: bool = Field(default=True,
                         description="One parameter set for all replaced layers (else one each).")
    freeze: bool = Field(default=False, description="requires_grad = False on the Sparta params.")
    load: LocalFile | None = Field(
        default=None, description="safetensors file from export_sparta, or a harness checkpoint "
                                  "(Sparta keys picked by suffix); a glob must match one file. "
                                  "Its content is part of the cell hash.")
    load_sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$",
        description="Expected sha256 of the load file, checked (pins which file a suite means).")
    match: Literal["name", "order"] = Field(
        default="name", description="Per-layer sets to layers: by module path, or by relative depth.")

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, value: int | None) -> int | None:
        if value is not None and value % 2 == 0:
            raise ValueError(f"kernel_size must be odd to keep the map size, got {value}")
        return value

    @field_validator("load")
    @classmethod
    def _exists(cls, value: str | None) -> str | None:
        return None if value is None else str(_resolve_load(value))

    @model_validator(mode="after")
    def _checksum(self) -> _SpartaFields:
        if self.load_sha256 and not self.load:
            raise ValueError("load_sha256 needs load = <file>")
        if self.load and self.load_sha256:
            digest = hashlib.sha256(Path(self.load).read_bytes()).hexdigest()
            if digest != self.load_sha256:
                raise ValueError(f"{self.load} has sha256 {digest}, not the load_sha256 given")
        return self


def _resolve_load(value: str) -> Path:
    """The one file ``value`` names (a path or a glob), checked now so ``validate`` reports it."""
    if Path(value).is_file():
        return Path(value)
    matches = sorted(glob.glob(value)) if glob.has_magic(value) else []
    matches = [m for m in matches if Path(m).is_file()]
    if len(matches) != 1:
        found = f"it matches {len(matches)} files: {', '.join(matches[:5])}" if matches else \
            "no such file"
        raise ValueError(f"load = {value!r}: {found}; give one .safetensors file (an export_sparta "
                         "file, or runs/<suite>/checkpoints/<train hash>.safetensors)")
    return Path(matches[0])


class ActivationParams(_Stages, _SoftplusFields, _LeakyFields, _PReLUFields, _SpartaFields):
    fn: ActivationFn = Field(description="The activation that replaces every matched one "
                                         "(swish = silu = x·sigmoid(x)).")

    @model_validator(mode="after")
    def _only_relevant(self) -> ActivationParams:
        own = {"softplus": _SoftplusFields, "leakyrelu": _LeakyFields, "prelu": _PReLUFields,
               "sparta": _SpartaFields}.get(self.fn)
        allowed = {"fn", *_Stages.model_fields, *(own.model_fields if own else ())}
        # compared with the defaults, not model_fields_set: the engine re-validates dumped params
        stray = sorted(name for name in set(type(self).model_fields) - allowed
                       if getattr(self, name) != type(self).model_fields[name].default)
        if stray:
            owners = {name: fn for fn, fields in (("softplus", _SoftplusFields), ("leakyrelu",
                      _LeakyFields), ("prelu", _PReLUFields), ("sparta", _SpartaFields))
                      for name in fields.model_fields}
            detail = ", ".join(f"{name} (fn = {owners[name]!r} only)" for name in stray)
            raise ValueError(f"not a parameter of fn = {self.fn!r}: {detail}")
        return self


class ReLUParams(_Stages):
    pass


class SoftplusParams(_Stages, _SoftplusFields):
    pass


class LeakyReLUParams(_Stages, _LeakyFields):
    pass


class PReLUParams(_Stages, _PReLUFields):
    pass


class SpartaParams(_Stages, _SpartaFields):
    pass


def _simple(fn: str, params: ActivationParams) -> Callable[[], nn.Module]:
    makers: dict[str, Callable[[], nn.Module]] = {
        "relu": nn.ReLU, "silu": nn.SiLU, "swish": nn.SiLU, "gelu": nn.GELU, "mish": nn.Mish,
        "softplus": lambda: nn.Softplus(beta=params.beta),
        "leakyrelu": lambda: nn.LeakyReLU(params.negative_slope),
        "prelu": lambda: nn.PReLU(init=params.init),
    }
    return makers[fn]


def _targets(model: nn.Module, stages: list[str] | None) -> list[str]:
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


def _under_any(prefix: str, paths: list[str]) -> bool:
    return any(p == prefix or p.startswith(prefix + ".") for p in paths)


def swap_activations(params: ActivationParams, model: nn.Module, info: DataInfo) -> nn.Module:
    """Replace every matched activation module of ``model`` (in place) and return it."""
    paths = _targets(model, params.stages)
    if params.fn == "sparta":
        _swap_to_sparta(params, model, paths)
    else:
        make = _simple(params.fn, params)
        replace_modules(model, paths, lambda _path: make())
    _rehome_shared_sparta(model)
    return model


def _rehome_shared_sparta(model: nn.Module) -> None:
    """Give a shared Sparta set a registered owner again if a later swap replaced its owner.

    Otherwise the set would drop out of ``parameters()`` (untrained, not moved by ``.to()``).
    """
    groups: dict[int, list[tuple[str, Sparta]]] = {}
    for path, module in model.named_modules():
        if isinstance(module, Sparta):
            groups.setdefault(id(module.attention), []).append((path, module))
    for members in groups.values():
        if any(m.shared_with is None for _, m in members):
            continue
        (owner_path, owner), attention = members[0], members[0][1].attention
        del owner.__dict__["_shared_attention"]
        owner.shared_with = None
        owner.sparta = attention
        for _, other in members[1:]:
            other.shared_with = owner_path


def _swap_to_sparta(params: ActivationParams, model: nn.Module, paths: list[str]) -> None:
    loaded, kernel = read_sparta(params.load) if params.load else ([], None)
    if kernel is not None and params.kernel_size is not None and params.kernel_size != kernel:
        raise UserError(f"sparta: kernel_size = {params.kernel_size} but {params.load} holds "
                        f"{kernel}×{kernel} parameters; drop kernel_size or set it to {kernel}")
    k = kernel or params.kernel_size or 3
    if params.shared:
        if len(loaded) > 1:
            raise UserError(f"sparta: {params.load} holds {len(loaded)} per-layer parameter sets; "
                            "load it with shared = false")
        attention = SpartaAttention(k)
        replace_modules(model, paths, lambda path: Sparta(attention, None if path == paths[0]
                                                          else paths[0]))
        owners = {paths[0]: attention}
    else:
        owners = {path: SpartaAttention(k) for path in paths}
        replace_modules(model, paths, lambda path: Sparta(owners[path]))
    if loaded:
        for path, tensors in _assign(loaded, list(owners), params).items():
            with torch.no_grad():
                for name, value in owners[path].named_parameters():
                    value.copy_(tensors[name].to(value.dtype))
    if params.freeze:
        for attention in owners.values():
            attention.requires_grad_(False)


def _assign(loaded: list[tuple[str, dict[str, torch.Tensor]]], layers: list[str],
            params: ActivationParams) -> dict[str, dict[str, torch.Tensor]]:
    """Which loaded set initialises which layer (see ``match`` in the module docstring)."""
    if len(loaded) == 1:
        return {layer: loaded[0][1] for layer in layers}
    if params.match == "order":
        m, n = len(loaded), len(layers)
        return {layer: loaded[round(i * (m - 1) / (n - 1)) if n > 1 else 0][1]
                for i, layer in enumerate(layers)}
    by_path = dict(loaded)
    missing = [p for p in layers if p not in by_path]
    unused = [p for p in by_path if p not in layers]
    if missing or unused:
        raise UserError(
            f"sparta: {params.load} has per-layer sets for other module paths (missing "
            f"{missing[:4]}{' …' if len(missing) > 4 else ''}, unused {unused[:4]}"
            f"{' …' if len(unused) > 4 else ''}); use match = \"order\" to map them by depth")
    return {layer: by_path[layer] for layer in layers}


def _fixed(fn: str) -> Callable[[BaseModel, nn.Module, DataInfo], nn.Module]:
    """A shorthand variant: ``activation`` with ``fn`` fixed, the same factory underneath."""

    def factory(params: BaseModel, model: nn.Module, info: DataInfo) -> nn.Module:
        full = ActivationParams.model_validate({"fn": fn, **params.model_dump(exclude_unset=True)})
        return swap_activations(full, model, info)

    factory.__name__ = factory.__qualname__ = f"swap_to_{fn}"
    return factory


# --- input upsampling -----------------------------------------------------------------------------

Mode = Literal["nearest", "bilinear", "bicubic"]


class UpsampleParams(_Params):
    scale: float = Field(default=2.0, gt=0, le=16,
                         description="Spatial scale factor (2 = the larger-feature-map study).")
    mode: Mode = Field(default="nearest", description="Interpolation (rcm's default: nearest).")


def _interpolate(x: torch.Tensor, steps: list[tuple[float, str]]) -> torch.Tensor:
    for scale, mode in steps:
        corners = {} if mode == "nearest" else {"align_corners": False}
        x = F.interpolate(x, scale_factor=scale, mode=mode, **corners)
    return x


class NormalizeUpsample(Normalize):
    """``Normalize`` then interpolate: the same buffers and keys as the ``Normalize`` it replaces."""

    def __init__(self, normalize: Normalize, steps: list[tuple[float, str]]) -> None:
        super().__init__(normalize.mean.flatten().tolist(), normalize.std.flatten().tolist())
        self.load_state_dict(normalize.state_dict())  # exact values, not a float round-trip
        self.steps = list(steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _interpolate(super().forward(x), self.steps)

    def extra_repr(self) -> str:
        return ", ".join(f"×{s:g} {m}" for s, m in self.steps)


class InputUpsample(nn.Module):
    """Interpolate the [0,1] input, then the wrapped model (for models without ``normalize``)."""

    def __init__(self, model: nn.Module, steps: list[tuple[float, str]]) -> None:
        super().__init__()
        self.model = model
        self.steps = list(steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(_interpolate(x, self.steps))

    def extra_repr(self) -> str:
        return ", ".join(f"×{s:g} {m}" for s, m in self.steps)


def upsample(params: UpsampleParams, model: nn.Module, info: DataInfo) -> nn.Module:
    """Normalise → interpolate → backbone; the model still takes the dataset's input size."""
    step = (params.scale, params.mode)
    normalize = getattr(model, "normalize", None)
    if isinstance(normalize, Normalize) and isinstance(getattr(model, "backbone", None), nn.Module):
        previous = normalize.steps if isinstance(normalize, NormalizeUpsample) else []
        model.normalize = NormalizeUpsample(normalize, [*previous, step])
    elif isinstance(model, InputUpsample):
        model.steps.append(step)
    else:
        model = InputUpsample(model, [step])
    _fit_linear_layers(model, info, params)
    return model


def _fit_linear_layers(model: nn.Module, info: DataInfo, params: UpsampleParams) -> None:
    """Re-size ``nn.Linear`` layers sized for the original maps (a Flatten → Linear head).

    A head built for the dataset's input size (the small CNN's, materialised by a dummy
    forward) cannot take the larger maps. The model is untrained when variants run, so such a
    layer is given the new input width and PyTorch's default initialisation, found by one
    forward on a zero input; anything else that cannot take the size is a clear error.
    """
    resized: list[nn.Linear] = []

    def fit(module: nn.Module, args: tuple[Any, ...]) -> None:
        width = args[0].shape[-1]
        if isinstance(module, nn.Linear) and width != module.in_features:
            weight = module.weight
            module.in_features = width
            module.weight = nn.Parameter(weight.new_empty(module.out_features, width))
            module.reset_parameters()
            resized.append(module)

    handles = [m.register_forward_pre_hook(fit) for m in model.modules() if type(m) is nn.Linear]
    try:
        with kept_modes(model), torch.no_grad():
            model.eval()(torch.zeros(1, *info.input_shape))
    except (RuntimeError, ValueError, AssertionError) as exc:
        raise UserError(f"upsample: {type(model).__name__} cannot run on its inputs upsampled "
                        f"×{params.scale:g} ({type(exc).__name__}: {exc}); a model built for a fixed "
                        "input size (a ViT's img_size) must be built for the upsampled size") from None
    finally:
        for handle in handles:
            handle.remove()


# --- registration ---------------------------------------------------------------------------------

SHORTHANDS: dict[str, tuple[type[BaseModel], str, dict[str, Any]]] = {
    "relu": (ReLUParams, "swap every activation module for ReLU", {}),
    "silu": (ReLUParams, "swap every activation module for SiLU/Swish x·sigmoid(x)", {}),
    "gelu": (ReLUParams, "swap every activation module for GELU (exact erf form)", {}),
    "mish": (ReLUParams, "swap every activation module for Mish x·tanh(softplus(x))", {}),
    "softplus": (SoftplusParams, "swap every activation module for Softplus (beta)", {"beta": 2}),
    "leakyrelu": (LeakyReLUParams, "swap every activation module for LeakyReLU", {}),
    "prelu": (PReLUParams, "swap every activation module for PReLU (a learned slope per layer)", {}),
    "sparta": (SpartaParams, "Sparta: ReLU·(1+α·tanh(conv([mean_c;max_c](x)))), α=0 at init; "
                             "shared/per-layer, freeze, load from an export or checkpoint",
               {"kernel_size": 3}),
}


@hookimpl
def harness_register_variants(registry):
    registry.add("activation", swap_activations, params=ActivationParams,
                 description="swap every activation module (or those under stages) for fn; "
                             "timm's own activation classes included, SE gates never",
                 test_params={"fn": "sparta", "shared": False})
    for fn, (params, description, test_params) in SHORTHANDS.items():
        registry.add(fn, _fixed(fn), params=params, description=description,
                     test_params=test_params)
    registry.add("upsample", upsample, params=UpsampleParams,
                 description="interpolate the input after normalization, before the backbone "
                             "(Xu et al. 2202.12435); attacks stay at the input resolution",
                 test_params={"scale": 2, "mode": "bilinear"})
