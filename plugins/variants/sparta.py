"""Sparta, a learnable activation: its modules, its parameter files, and swapping it into a model.

Guo et al., "Sparta: Spatially Attentive and Adversarially Robust Activation", arXiv
2105.08269. The paper's equation was not reachable; what its abstract establishes is a ReLU
extended by a learned *spatial attention*, so that the activation is spatially varying and
input-dependent, trained jointly with the CNN, and transferable as a fixed function to another
CNN (ResNet-18 → ResNet-34) or dataset (CIFAR-10 → SVHN). This module implements::

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
"""

from __future__ import annotations

import glob
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator
from torch import nn

from harness import LocalFile, Params, UserError

from .activations import replace_modules

# --- the modules ----------------------------------------------------------------------------------


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


# --- parameter files: state-dict keys, export, read -----------------------------------------------

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


# --- parameters -----------------------------------------------------------------------------------


class SpartaFields(Params):
    """Sparta's own parameters; the ``sparta`` and ``activation`` variants share them."""

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
    def _checksum(self) -> SpartaFields:
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


# --- swapping Sparta into a model -----------------------------------------------------------------


def swap_to_sparta(params: SpartaFields, model: nn.Module, paths: list[str]) -> None:
    """Replace the activations at ``paths`` by Sparta: one shared set or one each, maybe loaded."""
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
            params: SpartaFields) -> dict[str, dict[str, torch.Tensor]]:
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


def rehome_shared(model: nn.Module) -> None:
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
