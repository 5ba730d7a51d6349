"""The CNN zoo (plugins/cnns/, registries/architectures.toml): sizes, strides, activations, init.

Parameter counts are taken on the meta device (no memory, no forward), so even WRN-34-20
(184.5M parameters) is checked in the default run. Forward passes use thin models: spatial
sizes do not depend on width.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from harness import DataInfo

CIFAR = (3, 32, 32)
DIGITS = (1, 8, 8)


def info_for(shape: tuple[int, int, int], classes: int = 10) -> DataInfo:
    return DataInfo(shape, classes, (0.5,) * shape[0], (0.25,) * shape[0])


def build(components, name: str, shape=CIFAR, seed: int = 0, **overrides) -> nn.Module:
    """A factory or a catalogue preset, with ``overrides`` merged over the preset's params."""
    preset = components.catalogue.get("architectures", name)
    factory = preset.spec.factory if preset else name
    params = {**(dict(preset.spec.params) if preset else {}), **overrides}
    entry = components.architectures.get(factory)
    torch.manual_seed(seed)
    return entry.factory(entry.make_params(params), info_for(shape))


def count_on_meta(components, name: str, shape=CIFAR) -> int:
    with torch.device("meta"):
        model = build(components, name, shape)
    assert all(p.is_meta for p in model.parameters())
    return sum(p.numel() for p in model.parameters())


def feature_backbone(model: nn.Module) -> nn.Module:
    """What a metrics plugin does: find the module that names its final feature map."""
    return next(m for m in model.modules() if isinstance(getattr(m, "feature_map_module", None), str))


def hooked_feature_map(model: nn.Module, shape) -> tuple[int, ...]:
    backbone = feature_backbone(model)
    seen = []
    handle = backbone.get_submodule(backbone.feature_map_module).register_forward_hook(
        lambda _m, _i, out: seen.append(tuple(out.shape[1:])))
    with torch.no_grad():
        model.eval()(torch.rand(1, *shape))
    handle.remove()
    return seen[-1]


# --- parameter counts ---------------------------------------------------------------------------

#: preset → (parameters at 10 classes on 3×32×32, the figure the literature quotes in millions).
#: Exact counts of the reference implementations: kuangliu/pytorch-cifar (ResNet, DenseNet, VGG
#: with a 512→10 head), torchvision (MobileNetV2 with num_classes=10, VGG layers), rcm (AlexNet,
#: VGG with its MLP head), HanxunH/RobustWRN (WRNs; 46.16M / 66.46M / 68.12M in studies.md).
LITERATURE = {
    "resnet18-stride1122": (11_173_962, 11.2),
    "resnet34": (21_282_122, 21.3),
    "resnet50": (23_520_842, 23.5),
    "preact-resnet18": (11_172_170, 11.2),
    "preact-resnet34": (21_280_330, 21.3),
    "vgg11-bn": (9_231_114, 9.2),
    "vgg13-bn": (9_416_010, 9.4),
    "vgg16-bn": (14_728_266, 14.7),
    "vgg19-bn": (20_040_522, 20.0),
    "vgg16-bn-xu": (14_922_826, 14.9),
    "vgg16-bn-stride11222": (14_922_826, 14.9),
    "alexnet-xu": (2_850_634, 2.9),
    "alexnet-stride1122": (2_850_634, 2.9),
    "densenet121": (6_956_298, 7.0),
    "mobilenetv2": (2_236_682, 2.2),
    "wrn-28-10": (36_479_194, 36.5),
    "wrn-34-10": (46_160_474, 46.2),
    "wrn-34-12": (66_457_818, 66.5),
    "wrn-34-20": (184_531_674, 184.5),
    "wrn-34-r": (68_116_698, 68.1),
}


@pytest.mark.parametrize("name", sorted(LITERATURE))
def test_parameter_counts_match_the_literature(components, name):
    exact, millions = LITERATURE[name]
    count = count_on_meta(components, name)
    assert round(count / 1e6, 1) == millions, f"{name}: {count:,}"
    assert count == exact, f"{name}: {count:,}"


def test_resnet18_factory_default_is_the_11_2m_network(components):
    assert count_on_meta(components, "resnet18") == 11_173_962
    assert count_on_meta(components, "resnet") == 11_173_962


def test_mobilenet_v2_and_vgg_layers_are_torchvisions(components):
    """Same module names and tensor shapes as torchvision, so only the CIFAR strides differ."""
    import torchvision

    with torch.device("meta"):
        ours = build(components, "mobilenetv2").backbone.state_dict()
        theirs = torchvision.models.mobilenet_v2(num_classes=10).state_dict()
        ours_vgg = build(components, "vgg16-bn").backbone.features.state_dict()
        theirs_vgg = torchvision.models.vgg16_bn().features.state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
    assert {k: v.shape for k, v in ours_vgg.items()} == {k: v.shape for k, v in theirs_vgg.items()}


def test_wrn_34_r_channels_and_robustwrn_keys(components):
    with torch.device("meta"):
        backbone = build(components, "wrn-34-r").backbone
    assert backbone.channel_configs == [16, 320, 640, 512]
    keys = set(backbone.state_dict())
    for key in ("stem_conv.weight", "blocks.0.layer.0.bn1.weight", "blocks.0.layer.0.convShortcut.weight",
                "blocks.2.layer.4.conv2.weight", "bn1.running_mean", "fc.weight", "fc.bias"):
        assert key in keys, key
    assert "blocks.0.layer.1.convShortcut.weight" not in keys
    assert [len(stage.layer) for stage in backbone.blocks] == [5, 5, 5]


# --- strides and final feature maps ---------------------------------------------------------------

#: (architecture, thin params, input, final feature-map H×W).
FEATURE_MAPS = [
    ("resnet18", {"width": 2}, CIFAR, 4),
    ("resnet18", {"width": 2, "strides": "1122"}, CIFAR, 8),
    ("resnet18-stride1122", {"width": 2}, CIFAR, 8),
    ("resnet18", {"width": 2}, DIGITS, 1),
    ("resnet18", {"width": 2, "strides": "1111"}, DIGITS, 8),
    ("resnet50", {"width": 2, "strides": "1122"}, CIFAR, 8),
    ("preact-resnet18", {"width": 2}, CIFAR, 4),
    ("preact-resnet18-stride1122", {"width": 2}, CIFAR, 8),
    ("vgg16-bn", {"width": 4}, CIFAR, 1),
    ("vgg16-bn-stride11222", {"width": 4}, CIFAR, 4),
    ("vgg11-bn-digits", {"width": 4}, DIGITS, 1),
    ("alexnet-xu", {"width": 2}, CIFAR, 2),
    ("alexnet-stride1122", {"width": 2}, CIFAR, 7),
    ("alexnet-digits", {"width": 2}, DIGITS, 1),
    ("densenet121", {"growth": 2, "blocks": [1, 1, 1, 1]}, CIFAR, 4),
    ("densenet121", {"growth": 2, "blocks": [1, 1, 1, 1], "strides": "122"}, CIFAR, 8),
    ("mobilenetv2", {"width_mult": 0.1}, CIFAR, 4),
    ("mobilenetv2", {"width_mult": 0.1, "strides": "21222121"}, CIFAR, 1),
    ("wrn-34-10", {"widths": [0.25, 0.25, 0.25], "depths": [1, 1, 1]}, CIFAR, 8),
    ("wrn-34-10", {"widths": [0.25, 0.25, 0.25], "depths": [1, 1, 1], "strides": "112"}, CIFAR, 16),
]


@pytest.mark.parametrize(("name", "params", "shape", "size"), FEATURE_MAPS,
                         ids=[f"{n}-{p.get('strides', 'default')}-{s[1]}" for n, p, s, _ in FEATURE_MAPS])
def test_stride_strings_set_the_final_feature_map(components, name, params, shape, size):
    model = build(components, name, shape, **params)
    assert hooked_feature_map(model, shape)[1:] == (size, size)


def test_feature_map_shape_on_meta_matches_a_real_forward(components):
    for name, params, shape, size in FEATURE_MAPS[::3]:
        model = build(components, name, shape, **params)
        backbone = feature_backbone(model)
        assert backbone.feature_map_shape(shape) == hooked_feature_map(model, shape), name
        assert backbone.feature_map_shape(shape)[1:] == (size, size)
    with torch.device("meta"):  # and without building anything real, even for WRN-34-20
        backbone = build(components, "wrn-34-20").backbone
    assert backbone.feature_map_shape(CIFAR) == (1280, 8, 8)
    assert backbone.training, "the shape query must leave the module's mode alone"


# --- every factory at 8×8×1 and 32×32×3 ---------------------------------------------------------

#: factory → thin params that keep the default strides.
THIN = {
    "resnet18": {"width": 2},
    "resnet": {"depth": 34, "width": 2},
    "preact-resnet": {"depth": 34, "width": 2},
    "vgg": {"depth": 19, "width": 2},
    "alexnet": {"width": 2},
    "densenet": {"growth": 2, "blocks": [1, 2, 2, 1]},
    "mobilenet-v2": {"width_mult": 0.1},
    "wide-resnet": {"depths": [1, 1, 1], "widths": [0.25, 0.25, 0.5]},
    "small-cnn": {"channels": 2, "hidden": 8},
}
#: what a default-strided factory needs: VGG's five 2×2 pools need 32×32, AlexNet's 2222 15×15.
SMALLEST = {"vgg": 32, "alexnet": 15}
SMALL_INPUT_STRIDES = {"vgg": "11222", "alexnet": "1122"}


def test_every_zoo_factory_is_tested(components):
    assert {e.name for e in components.architectures if e.plugin == "cnns"} == set(THIN)


@pytest.mark.parametrize("shape", [DIGITS, CIFAR], ids=["8x8x1", "32x32x3"])
@pytest.mark.parametrize("factory", sorted(THIN))
def test_every_factory_takes_inputs_it_claims(components, factory, shape):
    entry = components.architectures.get(factory)
    params = dict(THIN[factory])
    if shape[1] < SMALLEST.get(factory, 0):
        reason = entry.check_input(entry.make_params(params), shape)
        needed = SMALLEST[factory]
        assert reason is not None and f"needs at least {needed}×{needed}" in reason
        params["strides"] = SMALL_INPUT_STRIDES[factory]
    if entry.check_input is not None:
        assert entry.check_input(entry.make_params(params), shape) is None
    model = build(components, factory, shape, **params)
    x = torch.rand(2, *shape, generator=torch.Generator().manual_seed(0))
    logits = model.train()(x)
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()
    with torch.no_grad():
        assert model.eval()(x).shape == (2, 10)


def test_check_input_gives_the_exact_smallest_input(components):
    check = components.architectures.get("alexnet").check_input
    params = components.architectures.get("alexnet").make_params({})
    torch.manual_seed(0)
    expected_next = torch.rand(1)
    torch.manual_seed(0)
    assert check(params, (3, 15, 15)) is None
    assert "needs at least 15×15" in check(params, (3, 14, 14))
    assert "needs at least 15×15" in check(params, (3, 64, 14)), "the shorter side decides"
    assert torch.equal(torch.rand(1), expected_next), "validation moved the global RNG"
    assert check(params, (3, 8)) == "needs (C, H, W) images, not inputs of shape (3, 8)"


def test_validate_rejects_vgg16_on_digits_with_the_reason(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "suite.toml").write_text(
        'datasets = ["digits"]\narchitectures = ["vgg16-bn"]\nrecipes = ["standard-digits"]\n'
        'attacks = ["fgsm-linf-0.1"]\n', encoding="utf-8")
    result = run_cli("validate", "suite.toml")
    assert result.exit_code == 2
    assert "architectures[0]: inputs of 8×8 are too small for these strides" in result.stderr
    assert "needs at least 32×32" in result.stderr
    assert "(dataset 'digits' has inputs of shape (1, 8, 8))" in result.stderr


def test_existing_presets_and_params_keep_working(components):
    for name in ("small-cnn-digits", "resnet18-digits", "resnet18-stride1122"):
        assert components.catalogue.get("architectures", name) is not None, name
    model = build(components, "resnet18-digits", DIGITS)
    assert sum(p.numel() for p in model.parameters()) == 701_178
    assert {"backbone.stem.0.weight", "backbone.stages.0.0.conv1.weight", "backbone.head.2.weight"} \
        <= set(model.state_dict())
    cnn = build(components, "small-cnn-digits", DIGITS)
    assert sum(p.numel() for p in cnn.parameters()) == 151_306


def test_a_zoo_model_is_deterministic_under_a_seed_and_varies_without(components):
    x = torch.rand(2, *CIFAR, generator=torch.Generator().manual_seed(0))
    first = build(components, "densenet", CIFAR, seed=1, **THIN["densenet"]).eval()
    again = build(components, "densenet", CIFAR, seed=1, **THIN["densenet"]).eval()
    other = build(components, "densenet", CIFAR, seed=2, **THIN["densenet"]).eval()
    with torch.no_grad():
        assert torch.equal(first(x), again(x))
        assert not torch.equal(first(x), other(x))


# --- WideResNet: per-stage activations and the study's initialization ---------------------------


def calls_per_type(model: nn.Module, shape) -> dict[str, int]:
    """How many times each activation type runs in one forward (present *and* used)."""
    counts: dict[str, int] = {}
    kinds = (nn.ReLU, nn.SiLU, nn.GELU, nn.Softplus, nn.Mish, nn.PReLU, nn.LeakyReLU)
    handles = [m.register_forward_hook(
        lambda mod, _i, _o: counts.__setitem__(type(mod).__name__, counts.get(type(mod).__name__, 0) + 1))
        for m in model.modules() if isinstance(m, kinds)]
    with torch.no_grad():
        model.eval()(torch.rand(1, *shape))
    for handle in handles:
        handle.remove()
    return counts


@pytest.mark.parametrize(("activations", "final", "expected"), [
    (["relu", "gelu", "mish"], "relu", {"ReLU": 2 * 2 + 1, "GELU": 2 * 1, "Mish": 2 * 3}),
    (["prelu", "softplus", "swish"], "leakyrelu",
     {"PReLU": 2 * 2, "Softplus": 2 * 1, "SiLU": 2 * 3, "LeakyReLU": 1}),
    (["silu", "silu", "silu"], "silu", {"SiLU": 2 * 6 + 1}),
])
def test_wrn_per_stage_activations_are_used(components, activations, final, expected):
    model = build(components, "wide-resnet", DIGITS, depths=[2, 1, 3], widths=[0.25, 0.25, 0.25],
                  activations=activations, final_activation=final)
    assert calls_per_type(model, DIGITS) == expected
    stages = feature_backbone(model).blocks
    for stage, name in zip(stages, activations, strict=True):
        expected_type = {"swish": nn.SiLU, "silu": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU,
                         "mish": nn.Mish, "prelu": nn.PReLU, "softplus": nn.Softplus}[name]
        assert all(type(block.relu1) is expected_type and type(block.relu2) is expected_type
                   for block in stage.layer)


def test_wrn_rejects_an_unknown_activation(components):
    entry = components.architectures.get("wide-resnet")
    with pytest.raises(ValueError, match="activations"):
        entry.make_params({"activations": ["relu", "tanh", "relu"]})


def test_wrn_init_matches_the_study(components):
    """RobustWRN: conv ~ N(0, √(2/(k·k·out))), BN weight 1 / bias 0, FC bias 0, FC weight default."""
    model = build(components, "wide-resnet", CIFAR, depths=[1, 1, 1], widths=[4, 4, 4])
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1 + 3 * 2 + 3  # stem, two per block, a shortcut per stage
    for conv in convs:
        expected = math.sqrt(2.0 / (conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels))
        weight = conv.weight.detach()
        if weight.numel() >= 4096:
            assert weight.std().item() == pytest.approx(expected, rel=0.05), conv
            assert abs(weight.mean().item()) < 0.05 * expected
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        assert torch.equal(bn.weight, torch.ones_like(bn.weight))
        assert torch.equal(bn.bias, torch.zeros_like(bn.bias))
    fc = feature_backbone(model).fc
    assert torch.equal(fc.bias, torch.zeros_like(fc.bias))
    bound = 1 / math.sqrt(fc.in_features)  # PyTorch's default (kaiming-uniform) weight, untouched
    assert 0.5 * bound < fc.weight.abs().max().item() <= bound


def test_wrn_block_follows_the_reference_forward(components):
    """Channel change: the shortcut takes the pre-activated input; same width, stride 2: raw input."""
    # widths [2, 1, 0.5] → channels [16, 32, 32, 32]: stage 2 keeps 32 channels but has stride 2.
    model = build(components, "wide-resnet", CIFAR, depths=[1, 1, 1], widths=[2, 1, 0.5])
    backbone = feature_backbone(model).eval()
    x = torch.randn(2, 16, 8, 8, generator=torch.Generator().manual_seed(0))
    changing, strided = backbone.blocks[0].layer[0], backbone.blocks[1].layer[0]
    with torch.no_grad():
        pre = changing.relu1(changing.bn1(x))
        mid = changing.relu2(changing.bn2(changing.conv1(pre)))
        assert torch.allclose(changing(x), changing.convShortcut(pre) + changing.conv2(mid))
        y = torch.randn(2, 32, 8, 8, generator=torch.Generator().manual_seed(1))
        mid = strided.relu2(strided.bn2(strided.conv1(strided.relu1(strided.bn1(y)))))
        assert torch.allclose(strided(y), strided.convShortcut(y) + strided.conv2(mid))
