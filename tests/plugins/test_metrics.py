"""Each architecture metric against a value computed by hand on a tiny model."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from harness import DataInfo
from harness.session import load_components

METRICS = load_components(autoload=False).metrics
INFO = DataInfo((1, 4, 4), 2, (0.0,), (1.0,))


def measure(name: str, model: nn.Module, x: torch.Tensor, **params) -> dict[str, float]:
    entry = METRICS.get(name)
    return entry.factory(entry.make_params(params))(model.eval(), x, torch.zeros(len(x)), INFO)


def linear(weight: list[list[float]]) -> nn.Linear:
    layer = nn.Linear(len(weight[0]), len(weight), bias=True)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.zero_()
    return layer


def test_params_and_flops_of_a_linear_layer():
    model = nn.Sequential(nn.Flatten(), linear([[1.0] * 16, [2.0] * 16]))
    x = torch.rand(3, 1, 4, 4)
    assert measure("params", model, x) == {"params": 34}  # 32 weights + 2 biases
    assert measure("flops", model, x) == {"flops": 2 * 16 * 2}  # one example, multiply-add = 2


def test_feature_map_is_the_input_of_global_pooling():
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))
    assert measure("feature-map", model, torch.rand(2, 1, 4, 4)) == {
        "channels": 3, "height": 2, "width": 2}
    tokens = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))  # no conv: no feature map
    assert all(math.isnan(v) for v in measure("feature-map", tokens, torch.rand(1, 1, 4, 4)).values())


class ChannelsLast(nn.Module):
    def __init__(self, to_last: bool) -> None:
        super().__init__()
        self.order = (0, 2, 3, 1) if to_last else (0, 3, 1, 2)

    def forward(self, x):
        return x.permute(*self.order)


def test_feature_map_skips_channels_last_pointwise_linears():
    """ConvNeXt blocks apply nn.Linear to (N, H, W, C): that is a 1×1 conv, not the head."""
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), ChannelsLast(True), nn.Linear(3, 5),
                          ChannelsLast(False), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(5, 2))
    assert measure("feature-map", model, torch.rand(2, 1, 4, 4)) == {
        "channels": 5, "height": 2, "width": 2}


def test_feature_map_of_a_declaring_backbone_is_its_declared_module(components):
    """The built-in CNNs name their final map; the metric reads it there (width 32 at 1122)."""
    entry = components.architectures.get("resnet18")
    info = DataInfo((3, 16, 16), 10, (0.5,) * 3, (0.25,) * 3)
    model = entry.factory(entry.make_params({"width": 4, "strides": "1122"}), info)
    assert measure("feature-map", model, torch.rand(1, 3, 16, 16)) == {
        "channels": 32, "height": 4, "width": 4}


def test_sparsity_definitions():
    model = nn.Sequential(nn.Flatten(), linear([[1.0, 0.0, 0.0, 0.0], [0.001, 0.5, 0.0, 0.0]]))
    values = measure("sparsity", model, torch.rand(1, 1, 2, 2), per_layer=True)
    assert values["fraction_small"] == pytest.approx(6 / 8)  # |w| < 0.01 · max: five 0 and 0.001
    w = torch.tensor([1.0, 0, 0, 0, 0.001, 0.5, 0, 0], dtype=torch.float64)
    expected = (math.sqrt(8) - float(w.abs().sum() / w.norm())) / (math.sqrt(8) - 1)
    assert values["hoyer"] == pytest.approx(expected)
    assert values["1.hoyer"] == pytest.approx(expected)


def test_local_lipschitz_of_a_linear_map_on_one_pixel():
    """f(x) = W x with one input pixel: ‖f(x')−f(x)‖₁ / |x'−x| = ‖W‖₁ = 2 + 3 for any x'."""
    model = nn.Sequential(nn.Flatten(), linear([[2.0], [-3.0]]))
    value = measure("local-lipschitz", model, torch.full((4, 1, 1, 1), 0.5), eps=0.05)
    assert value["local_lipschitz"] == pytest.approx(5.0, rel=1e-5)


def test_local_lipschitz_ascent_approaches_the_sup_from_below():
    """For f(x) = w·x the sup is ‖w‖₁ = 3.75 (x' = x + eps·sign(w)); sign ascent gets close."""
    model = nn.Sequential(nn.Flatten(), linear([[0.5, -1.0, 2.0, 0.25]]))
    value = measure("local-lipschitz", model, torch.full((4, 1, 2, 2), 0.5), eps=0.05,
                    steps=20, step_size=0.01)["local_lipschitz"]
    assert 0.9 * 3.75 <= value <= 3.75 + 1e-5


def test_spectral_bound_multiplies_layer_norms():
    conv = nn.Conv2d(1, 1, 1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(2.0)  # spectral norm 2
    model = nn.Sequential(conv, nn.Flatten(), linear([[3.0, 0, 0, 0], [0, 1.0, 0, 0]]))
    value = measure("spectral-bound", model, torch.rand(1, 1, 2, 2), iterations=50)
    assert value["log10_bound"] == pytest.approx(math.log10(6.0), abs=1e-4)


@pytest.mark.parametrize("name", [entry.name for entry in METRICS])
def test_every_metric_runs_on_a_small_cnn(name):
    entry = load_components(autoload=False).architectures.get("small-cnn")
    info = DataInfo((3, 8, 8), 4, (0.5,) * 3, (0.25,) * 3)
    model = entry.factory(entry.make_params({"channels": 4, "hidden": 8}), info).eval()
    metric = METRICS.get(name)
    values = metric.factory(metric.make_params(metric.test_params))(
        model, torch.rand(4, 3, 8, 8), torch.zeros(4, dtype=torch.long), info)
    assert values and all(isinstance(v, int | float) for v in values.values())
    assert all(p.grad is None for p in model.parameters())


def dense_norm(linear_map, shape: tuple[int, ...]) -> float:
    """Exact l2 operator norm of a linear map on tiny inputs, from its full matrix."""
    n = math.prod(shape)
    with torch.no_grad():
        matrix = linear_map(torch.eye(n).view(n, *shape)).flatten(1)
    return float(torch.linalg.matrix_norm(matrix, ord=2))


def darts_model(genotype, C: int = 4, layers: int = 3) -> nn.Module:
    entry = load_components(autoload=False).architectures.get("darts")
    info = DataInfo((1, 8, 8), 4, (0.5,), (0.25,))
    torch.manual_seed(0)
    return entry.factory(entry.make_params({"genotype": genotype, "C": C, "layers": layers}),
                         info).eval()


def test_edge_constants_of_the_darts_ops(components):
    darts, metrics = (components.pm.get_plugin(name) for name in ("darts", "metrics"))
    Edge, FactorizedReduce, SepConv = darts.network.Edge, darts.ops.FactorizedReduce, darts.ops.SepConv
    SpectralParams, edge_lipschitz, layer_inputs = (
        metrics.SpectralParams, metrics.edge_lipschitz, metrics.layer_inputs)

    params, generator = SpectralParams(iterations=200), torch.Generator().manual_seed(0)
    shape = (1, 2, 5, 5)
    torch.manual_seed(0)  # the ops' initial weights

    def constant(kind: str, module: nn.Module) -> float:
        shapes = layer_inputs(module, torch.rand(shape), list(module.modules()))
        return edge_lipschitz(Edge(2, 0, "op", kind, 1, module), shapes, params, generator)

    assert constant("zero", nn.Identity()) == 0.0
    assert constant("skip", nn.Identity()) == 1.0
    assert constant("pool", nn.MaxPool2d(3, stride=1, padding=1)) == 3.0  # a pixel in 9 windows
    assert constant("pool", nn.MaxPool2d(3, stride=2, padding=1)) == 2.0  # ... in 4 windows
    avg = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    assert constant("pool", avg) == pytest.approx(dense_norm(avg, shape[1:]), rel=1e-3)
    sep = SepConv(2, 2, 3, 1).eval()
    shapes = layer_inputs(sep, torch.rand(shape), list(sep.modules()))
    expected = math.prod(dense_norm(lambda v, c=c: nn.functional.conv2d(
        v, c.weight, None, c.stride, c.padding, c.dilation, c.groups), shapes[c][1:])
        for c in sep.modules() if isinstance(c, nn.Conv2d))
    assert constant("conv", sep) == pytest.approx(expected / (1 + 1e-5), rel=1e-2)  # fresh BN
    reduce = FactorizedReduce(2, 2).eval()  # two 1×1 convs side by side, not in sequence
    sigma = [float(torch.linalg.matrix_norm(c.weight.detach().flatten(1), ord=2))
             for c in (reduce.conv_1, reduce.conv_2)]
    assert constant("conv", reduce) == pytest.approx(
        math.hypot(*sigma) / math.sqrt(1 + 1e-5), rel=1e-3)


def test_cell_bound_sums_edges_and_multiplies_cells(components):
    """Normal cells of identities and zeros: each node-2..5 pair is skip + none, so the normal
    cells' sums are 4 (one identity per node); the reduction cells are measured as they are."""
    metrics = components.pm.get_plugin("metrics")
    SpectralParams, edge_lipschitz, layer_inputs = (
        metrics.SpectralParams, metrics.edge_lipschitz, metrics.layer_inputs)

    skips = [["skip_connect", 0], ["none", 1]] * 4
    model = darts_model({"normal": skips, "reduce": skips})
    value = measure("cell-bound", model, torch.rand(1, 1, 8, 8), iterations=50)
    net = next(m for m in model.modules() if getattr(m, "search_space", None) == "darts")
    reduction = [cell for cell in net.cells if cell.reduction]
    assert len(net.cells) == 3 and len(reduction) == 2
    shapes = layer_inputs(model, torch.rand(1, 1, 8, 8),
                          [m for cell in reduction for m in cell.modules()])
    generator = torch.Generator().manual_seed(0)
    reduce_sums = [sum(edge_lipschitz(e, shapes, SpectralParams(iterations=50), generator)
                       for e in cell.edges()) for cell in reduction]
    expected = math.log10(4) + sum(math.log10(s) for s in reduce_sums)
    assert value["log10_cell_bound"] == pytest.approx(expected, abs=1e-3)
    assert math.isnan(measure("cell-bound", nn.Sequential(nn.Flatten(), nn.Linear(64, 2)),
                              torch.rand(1, 1, 8, 8))["log10_cell_bound"])
