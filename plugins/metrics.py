"""Architecture metrics that explain robustness: size, FLOPs, feature-map size, weight sparsity,
local Lipschitz constant and the spectral-norm product bound.

Definitions (each metric returns plain numbers, stored next to the trained model):

- ``params``: number of parameters.
- ``flops``: FLOPs of one forward pass on one example at the dataset's input size, counted by
  ``torch.utils.flop_counter`` (a multiply-add counts as 2).
- ``feature-map``: channels × height × width of the last 4-D feature map before global pooling
  or flattening (the larger-feature-map study's quantity): the map a backbone declares with
  ``feature_map_module``, else found by hooks; NaN for token-based models.
- ``sparsity``: over all conv and linear weights, (1) ``fraction_small``: the fraction of weights
  with |w| < ``threshold`` · max |w| of their layer, and (2) ``hoyer``: Hoyer's measure
  (√n − ‖w‖₁/‖w‖₂)/(√n − 1) per layer (0 = all equal magnitudes, 1 = one nonzero weight),
  both averaged over layers weighted by their size; ``per_layer = true`` adds every layer.
- ``local-lipschitz``: mean over test points of ‖f(x) − f(x′)‖₁ / ‖x − x′‖∞ on logits, with x′
  found by ``steps`` sign-gradient ascent steps on that ratio inside the linf ball of radius
  ``eps`` (the architectural-ingredients study's estimator).
- ``spectral-bound``: log10 of the product over conv and linear layers of their spectral norms
  (power iteration on the layer as a linear map at its real input size) and over BatchNorm
  layers of max |γ/σ|: the network-level upper bound of RACL-style analyses. Residual
  connections make it a proxy, not a bound, for ResNets (documented there as well).
- ``cell-bound``: RACL's architecture-level bound for DARTS-space models (Dong et al., arXiv
  2009.00902): per edge the l2 Lipschitz constant of its op (``edge_lipschitz``), per cell the
  sum over its edges, for the network the product over cells, as log10; stem, preprocessing and
  classifier are left out as in the paper's formula. NaN for models that are not DARTS networks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from harness import Params, hookimpl
from harness.toolkits import frozen_parameters

__version__ = "2"  # 2: feature-map skips channels-last linears (ConvNeXt)

GLOBAL_END = ("Linear", "Flatten", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d")


def parameter_count(params: Params):
    def measure(model, x, y, info):
        return {"params": sum(p.numel() for p in model.parameters())}

    return measure


def flop_count(params: Params):
    def measure(model, x, y, info):
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:  # not under no_grad: torch's module tracker then fails on some timm models
            model(x[:1])
        model.zero_grad(set_to_none=True)
        return {"flops": counter.get_total_flops()}

    return measure


def _shapes_seen(model: nn.Module, example: torch.Tensor, modules: list[nn.Module], *,
                 outputs: bool = False) -> list[tuple[nn.Module, tuple[int, ...]]]:
    """(module, input or output shape) of each call to ``modules`` in one forward."""
    calls: list[tuple[nn.Module, tuple[int, ...]]] = []

    def record(module, inputs, output) -> None:  # a hook returning a value replaces the output
        tensor = output if outputs else (inputs[0] if inputs else None)
        if isinstance(tensor, torch.Tensor):
            calls.append((module, tuple(tensor.shape)))

    handles = [m.register_forward_hook(record) for m in modules]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    return calls


def final_feature_map(model: nn.Module, example: torch.Tensor) -> tuple[int, int, int] | None:
    """(C, H, W) of the final feature map.

    A backbone that declares ``feature_map_module`` (the built-in CNNs do) gives it as that
    module's output. Otherwise it is the input of the first global pooling / flatten / linear
    layer after a conv; a linear layer on a 4-D input is a channels-last pointwise conv
    (ConvNeXt blocks), not the head, and is skipped.
    """
    declaring = next((m for m in model.modules()
                      if isinstance(getattr(m, "feature_map_module", None), str)), None)
    if declaring is not None:
        target = declaring.get_submodule(declaring.feature_map_module)
        calls = _shapes_seen(model, example, [target], outputs=True)
        return tuple(calls[-1][1][1:]) if calls and len(calls[-1][1]) == 4 else None
    leaves = [m for m in model.modules() if not list(m.children())]
    seen_conv = False
    for module, shape in _shapes_seen(model, example, leaves):
        name = type(module).__name__
        seen_conv = seen_conv or name.startswith("Conv")
        if seen_conv and name in GLOBAL_END and not (name == "Linear" and len(shape) > 2):
            return tuple(shape[1:]) if len(shape) == 4 else None
    return None


def feature_map(params: Params):
    def measure(model, x, y, info):
        shape = final_feature_map(model, x[:1])
        if shape is None:
            return {"channels": math.nan, "height": math.nan, "width": math.nan}
        return dict(zip(("channels", "height", "width"), shape, strict=True))

    return measure


class SparsityParams(Params):
    threshold: float = Field(default=0.01, gt=0, lt=1,
                             description="Relative to the layer's largest |w|.")
    per_layer: bool = False


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, nn.Conv2d | nn.Linear | nn.Conv1d)]


def hoyer(w: torch.Tensor) -> float:
    n = w.numel()
    if n < 2 or float(w.norm()) == 0:
        return 0.0
    ratio = float(w.abs().sum() / w.norm())
    return (math.sqrt(n) - ratio) / (math.sqrt(n) - 1)


def sparsity(params: SparsityParams):
    def measure(model, x, y, info):
        out: dict[str, float] = {}
        total = small = weighted_hoyer = 0.0
        for name, layer in weight_layers(model):
            w = layer.weight.detach().flatten().double()
            layer_small = float((w.abs() < params.threshold * w.abs().max()).double().mean())
            layer_hoyer = hoyer(w)
            total += w.numel()
            small += layer_small * w.numel()
            weighted_hoyer += layer_hoyer * w.numel()
            if params.per_layer:
                out[f"{name}.fraction_small"] = layer_small
                out[f"{name}.hoyer"] = layer_hoyer
        out["fraction_small"] = small / total if total else math.nan
        out["hoyer"] = weighted_hoyer / total if total else math.nan
        return out

    return measure


class LipschitzParams(Params):
    eps: float = Field(default=8 / 255, gt=0)
    steps: int = Field(default=10, ge=1)
    step_size: float = Field(default=0.003, gt=0)
    max_examples: int = Field(default=128, ge=1)
    seed: int = 0


def local_lipschitz(model: nn.Module, x: torch.Tensor, params: LipschitzParams) -> float:
    generator = torch.Generator(device=x.device).manual_seed(params.seed)
    with torch.no_grad():
        clean = model(x)
    x_adv = (x + 0.001 * torch.randn(x.shape, generator=generator, device=x.device)).clamp(0, 1)
    with frozen_parameters(model):
        for _ in range(params.steps):
            x_adv.requires_grad_(True)
            ratio = lipschitz_ratio(model(x_adv), clean, x_adv, x)
            (grad,) = torch.autograd.grad(ratio.sum(), x_adv)
            x_adv = x_adv.detach() + params.step_size * grad.sign()
            x_adv = torch.min(torch.max(x_adv, x - params.eps), x + params.eps).clamp(0, 1)
    with torch.no_grad():
        return float(lipschitz_ratio(model(x_adv), clean, x_adv, x).mean())


def lipschitz_ratio(logits: torch.Tensor, clean: torch.Tensor, x_adv: torch.Tensor,
                    x: torch.Tensor) -> torch.Tensor:
    top = (logits - clean).abs().flatten(1).sum(dim=1)
    bottom = (x_adv - x).abs().flatten(1).amax(dim=1).clamp_min(1e-12)
    return top / bottom


def lipschitz(params: LipschitzParams):
    def measure(model, x, y, info):
        return {"local_lipschitz": local_lipschitz(model, x[:params.max_examples], params)}

    return measure


class SpectralParams(Params):
    iterations: int = Field(default=20, ge=1)
    seed: int = 0


def layer_inputs(model: nn.Module, example: torch.Tensor, layers: list[nn.Module] | None = None
                 ) -> dict[nn.Module, tuple[int, ...]]:
    """Input shape of each of ``layers`` (default: every conv and linear) at its first call."""
    layers = [m for _, m in weight_layers(model)] if layers is None else layers
    shapes: dict[nn.Module, tuple[int, ...]] = {}
    for module, shape in _shapes_seen(model, example, layers):
        shapes.setdefault(module, shape)
    return shapes


def operator_norm(linear_map, input_shape: tuple[int, ...], iterations: int,
                  generator: torch.Generator) -> float:
    """Largest singular value of a linear map on inputs of ``input_shape``, by power iteration
    (on the generator's device)."""
    v = torch.randn((1, *input_shape[1:]), generator=generator, device=generator.device)
    sigma = 0.0
    for _ in range(iterations):
        v = v / v.norm().clamp_min(1e-12)
        v.requires_grad_(True)
        u = linear_map(v)
        (v_next,) = torch.autograd.grad(u, v, grad_outputs=u)  # Aᵀ A v
        sigma = float(u.detach().norm())
        v = v_next.detach()
    return sigma


def spectral_norm(layer: nn.Module, input_shape: tuple[int, ...], iterations: int,
                  generator: torch.Generator) -> float:
    """Largest singular value of the layer's linear part (bias dropped) by power iteration."""
    weight = layer.weight.detach()

    def forward(v: torch.Tensor) -> torch.Tensor:
        if isinstance(layer, nn.Linear):
            return F.linear(v, weight)
        conv = F.conv2d if isinstance(layer, nn.Conv2d) else F.conv1d
        return conv(v, weight, None, layer.stride, layer.padding, layer.dilation, layer.groups)

    return operator_norm(forward, input_shape, iterations, generator)


def batchnorm_scale(bn: nn.Module) -> float:
    """max |γ/σ| of an eval-mode BatchNorm: its Lipschitz constant (the shift does not count)."""
    scale = (bn.weight.detach() if bn.weight is not None else 1) / torch.sqrt(bn.running_var + bn.eps)
    return float(scale.abs().max())


def spectral_bound(params: SpectralParams):
    def measure(model, x, y, info):
        generator = torch.Generator(device=x.device).manual_seed(params.seed)
        shapes = layer_inputs(model, x[:1])
        log_bound = 0.0
        for _, layer in weight_layers(model):
            if layer in shapes:
                log_bound += math.log10(max(spectral_norm(layer, shapes[layer], params.iterations,
                                                          generator), 1e-30))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d) and m.running_var is not None:
                log_bound += math.log10(max(batchnorm_scale(m), 1e-30))
        return {"log10_bound": log_bound}

    return measure


def edge_lipschitz(edge, shapes: dict[nn.Module, tuple[int, ...]], params: SpectralParams,
                   generator: torch.Generator) -> float:
    """l2 Lipschitz constant (an upper bound) of one DARTS edge's op, eval mode.

    zero 0, identity 1; average pooling is linear, so its norm is computed like a conv's; max
    pooling moves each output by at most the largest change in its window, and a pixel lies in
    at most ⌈k/s⌉² windows, so ⌈k/s⌉. Conv ops are ReLU/conv/BN chains (ReLU is 1-Lipschitz): the
    product of their convs' spectral norms and BN scales, except the stride-2 skip, whose two
    convs run side by side: √(σ₁² + σ₂²) times its BN scale.
    """
    module = edge.module
    if edge.kind == "zero":
        return 0.0
    if edge.kind == "skip":
        return 1.0
    if isinstance(module, nn.MaxPool2d):
        return float(math.ceil(module.kernel_size / module.stride))
    if isinstance(module, nn.AvgPool2d):
        return operator_norm(module, shapes[module], params.iterations, generator)
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    norms = [spectral_norm(c, shapes[c], params.iterations, generator) for c in convs]
    bn = math.prod(batchnorm_scale(m) for m in module.modules() if isinstance(m, nn.BatchNorm2d))
    if hasattr(module, "conv_1") and hasattr(module, "conv_2"):  # FactorizedReduce
        return math.sqrt(sum(n * n for n in norms)) * bn
    return math.prod(norms) * bn


def cell_bound(params: SpectralParams):
    """RACL's network bound for DARTS-space models: the product over cells of the sum of the
    cell's edge constants (Dong et al., arXiv 2009.00902); NaN for other models."""
    def measure(model, x, y, info):
        net = next((m for m in model.modules() if getattr(m, "search_space", None) == "darts"),
                   None)
        if net is None:
            return {"log10_cell_bound": math.nan}
        edges = [edge for cell in net.cells for edge in cell.edges()]
        layers = [m for edge in edges for m in edge.module.modules()
                  if isinstance(m, nn.Conv2d | nn.AvgPool2d)]
        shapes = layer_inputs(model, x[:1], layers)
        generator = torch.Generator(device=x.device).manual_seed(params.seed)
        log_bound = 0.0
        for cell in net.cells:
            total = sum(edge_lipschitz(edge, shapes, params, generator) for edge in cell.edges())
            log_bound += math.log10(max(total, 1e-30))
        return {"log10_cell_bound": log_bound}

    return measure


@hookimpl
def harness_register_metrics(registry):
    registry.add("params", parameter_count, params=Params, default=True,
                 description="number of parameters")
    registry.add("flops", flop_count, params=Params, default=True,
                 description="FLOPs of one forward pass on one example (torch flop counter)")
    registry.add("feature-map", feature_map, params=Params, default=True,
                 description="C×H×W of the last feature map before global pooling")
    registry.add("sparsity", sparsity, params=SparsityParams, default=True,
                 description="weight sparsity: fraction below a relative threshold, Hoyer")
    registry.add("local-lipschitz", lipschitz, params=LipschitzParams,
                 test_params={"steps": 2, "max_examples": 4},
                 description="‖f(x)−f(x′)‖₁/‖x−x′‖∞ maximised in an eps ball (logits)")
    registry.add("spectral-bound", spectral_bound, params=SpectralParams,
                 test_params={"iterations": 3},
                 description="log10 product of per-layer spectral norms (power iteration)")
    registry.add("cell-bound", cell_bound, params=SpectralParams, test_params={"iterations": 3},
                 description="DARTS models: log10 product over cells of the summed edge Lipschitz "
                             "constants (RACL)")
