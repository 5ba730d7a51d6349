"""Architecture variants (plugins/variants/): activation swaps, Sparta, input upsampling.

Includes the conformance check over every registered variant, applied to the built-in
``small-cnn`` on 3×8×8 inputs (test_conformance.py covers attacks and architectures only).
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_model
from torch import nn

from harness import DataInfo, UserError, normalized
from harness.plan import build_plan
from harness.seeding import seed_everything
from harness.session import load_components
from harness.suite import load_suite

COMPONENTS = load_components(autoload=False)
VARIANTS = COMPONENTS.variants
PLUGIN = COMPONENTS.pm.get_plugin("variants")  # the package as the harness loaded it
ACTIVATIONS, SPARTA = PLUGIN.activations, PLUGIN.sparta
INFO = DataInfo((3, 8, 8), 10, (0.5, 0.4, 0.3), (0.25, 0.2, 0.3))


def build(arch: str, params: dict | None = None, variants: list[tuple[str, dict]] = (),
          info: DataInfo = INFO, seed: int = 0) -> nn.Module:
    """An architecture from the registry, then the variants in order, from a fixed seed."""
    seed_everything(seed)
    entry = COMPONENTS.architectures.get(arch)
    model = entry.factory(entry.make_params(params or {}), info)
    for name, values in variants:
        variant = VARIANTS.get(name)
        model = variant.factory(variant.make_params(values), model, info)
    return model


def count(model: nn.Module) -> Counter:
    return Counter(type(m).__name__ for m in model.modules())


def sparta_attentions(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if type(m).__name__ == "SpartaAttention"]


# --- conformance over every registered variant ------------------------------------------------------


@pytest.mark.parametrize("name", VARIANTS.names())
def test_variant_conformance_on_small_cnn(name):
    entry = VARIANTS.get(name)
    small = COMPONENTS.architectures.get("small-cnn").test_params

    def make() -> nn.Module:
        return build("small-cnn", small, [(name, entry.test_params)]).eval()

    model = make()
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1), requires_grad=True)
    logits = model(x)
    assert logits.shape == (2, 10)
    logits.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0, "no gradient reaches the input"
    with torch.no_grad():
        assert torch.equal(make()(x), model(x)), "not deterministic under a fixed seed"


def test_every_variant_has_a_params_model_that_forbids_unknown_keys():
    for entry in VARIANTS:
        with pytest.raises(ValueError):
            entry.make_params({**entry.test_params, "no_such_key": 1})


# --- activation swap ----------------------------------------------------------------------------------


def test_swap_replaces_every_relu_of_resnet18():
    before = count(build("resnet18", {"width": 4}))
    after = count(build("resnet18", {"width": 4}, [("gelu", {})]))
    assert before["ReLU"] == 17 and before["GELU"] == 0  # stem + 8 blocks × 2
    assert after["ReLU"] == 0 and after["GELU"] == 17
    for kind in ("Conv2d", "BatchNorm2d", "Linear", "BasicBlock"):
        assert after[kind] == before[kind]


def test_per_stage_swap_only_touches_that_stage():
    model = build("resnet18", {"width": 4},
                  [("activation", {"fn": "silu", "stages": ["backbone.stages.1"]})])
    swapped = [n for n, m in model.named_modules() if isinstance(m, nn.SiLU)]
    assert len(swapped) == 4 and all(n.startswith("backbone.stages.1.") for n in swapped)
    assert count(model)["ReLU"] == 13


def test_swap_options_reach_the_new_modules():
    model = build("resnet18", {"width": 4}, [("softplus", {"beta": 3.0}),
                                             ("activation", {"fn": "leakyrelu", "negative_slope": 0.2,
                                                             "stages": ["backbone.stem"]})])
    softplus = [m for m in model.modules() if isinstance(m, nn.Softplus)]
    leaky = [m for m in model.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(softplus) == 16 and all(m.beta == 3.0 for m in softplus)
    assert len(leaky) == 1 and leaky[0].negative_slope == 0.2
    prelu = build("resnet18", {"width": 4}, [("prelu", {"init": 0.1})])
    slopes = [m.weight for m in prelu.modules() if isinstance(m, nn.PReLU)]
    assert len(slopes) == 17
    assert all(s.shape == (1,) and float(s.detach()) == pytest.approx(0.1) for s in slopes)


def test_options_of_another_fn_are_rejected():
    with pytest.raises(ValueError, match=r"beta \(fn = 'softplus' only\)"):
        VARIANTS.get("activation").make_params({"fn": "gelu", "beta": 2})


def test_gates_are_never_swapped():
    class SqueezeExcite(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.reduce, self.act, self.expand = nn.Conv2d(c, 2, 1), nn.ReLU(), nn.Conv2d(2, c, 1)
            self.gate = nn.Sigmoid()

        def forward(self, x):
            return x * self.gate(self.expand(self.act(self.reduce(x.mean((2, 3), keepdim=True)))))

    backbone = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Hardswish(), SqueezeExcite(4),
                             nn.Hardsigmoid(), nn.Tanh(), nn.Flatten(), nn.Linear(256, 10))
    model = normalized(backbone, INFO)
    VARIANTS.get("gelu").factory(VARIANTS.get("gelu").make_params({}), model, INFO)
    kinds = count(model)
    assert kinds["GELU"] == 2 and kinds["Hardswish"] == kinds["ReLU"] == 0
    assert kinds["Sigmoid"] == kinds["Hardsigmoid"] == kinds["Tanh"] == 1
    assert model(torch.rand(2, 3, 8, 8)).shape == (2, 10)


def test_activation_classes_that_do_not_subclass_torch_are_matched_by_name():
    class GELU(nn.Module):  # timm.layers.activations.GELU is a plain nn.Module like this one
        def forward(self, x):
            return F.gelu(x)

    class Sigmoid(nn.Module):  # and so is timm's Sigmoid (an SE gate): never swapped
        def forward(self, x):
            return x.sigmoid()

    model = normalized(nn.Sequential(nn.Conv2d(3, 4, 1), GELU(), Sigmoid(), nn.Flatten(),
                                     nn.Linear(256, 10)), INFO)
    VARIANTS.get("relu").factory(VARIANTS.get("relu").make_params({}), model, INFO)
    assert [type(m).__name__ for m in model.backbone] == ["Conv2d", "ReLU", "Sigmoid", "Flatten",
                                                          "Linear"]


TIMM_ARCHS = [e.name for e in COMPONENTS.architectures if "timm" in e.plugin.lower()]


@pytest.mark.skipif(not TIMM_ARCHS, reason="no timm architecture plugin is registered")
@pytest.mark.parametrize("name", TIMM_ARCHS)
def test_timm_activations_are_swapped_and_gates_kept(name):
    entry = COMPONENTS.architectures.get(name)
    shape = entry.test_input_shape
    info = DataInfo(shape, 10, (0.5,) * shape[0], (0.25,) * shape[0])
    model = build(name, entry.test_params, info=info)
    gates = {n: type(m) for n, m in model.named_modules() if type(m).__name__ in ACTIVATIONS.GATE_NAMES}
    activations = ACTIVATIONS.find_activations(model)
    if not activations:
        pytest.skip(f"{name} has no activation modules at its test_params")
    VARIANTS.get("relu").factory(VARIANTS.get("relu").make_params({}), model, info)
    for path in activations:
        assert type(model.get_submodule(path)) is nn.ReLU, path
    assert {n: type(m) for n, m in model.named_modules() if n in gates} == gates
    assert model.eval()(torch.rand(2, *shape)).shape == (2, 10)


@pytest.mark.skipif(not {"convnext", "coatnet"} <= set(TIMM_ARCHS),
                    reason="the timm plugin's convnext and coatnet are not registered")
def test_timm_own_gelu_is_swapped_and_coatnet_gates_are_kept():
    def timm_classes(model: nn.Module, names) -> list[str]:
        return [type(m).__name__ for m in model.modules()
                if type(m).__module__.startswith("timm.") and type(m).__name__ in names]

    for name, gates in (("convnext", 0), ("coatnet", 3)):
        entry = COMPONENTS.architectures.get(name)
        shape = entry.test_input_shape
        info = DataInfo(shape, 10, (0.5,) * shape[0], (0.25,) * shape[0])
        model = build(name, entry.test_params, info=info)
        assert timm_classes(model, {"GELU"}), f"{name}: expected timm's own GELU class"
        assert len(timm_classes(model, ACTIVATIONS.GATE_NAMES)) == gates
        VARIANTS.get("silu").factory(VARIANTS.get("silu").make_params({}), model, info)
        assert timm_classes(model, {"GELU"}) == [] and count(model)["GELU"] == 0
        assert len(timm_classes(model, ACTIVATIONS.GATE_NAMES)) == gates  # SE Sigmoid gates and Tanh


def test_sparta_on_token_tensors_is_a_clear_error():
    backbone = nn.Sequential(nn.Flatten(2), nn.ReLU(), nn.Flatten(), nn.Linear(192, 10))
    model = normalized(backbone, INFO)
    VARIANTS.get("sparta").factory(VARIANTS.get("sparta").make_params({}), model, INFO)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) feature maps or \(N, C\).*stages"):
        model(torch.rand(2, 3, 8, 8))


def test_a_model_with_functional_activations_only_is_a_clear_error():
    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.fc = nn.Conv2d(3, 4, 3, padding=1), nn.Linear(256, 10)

        def forward(self, x):
            return self.fc(F.relu(self.conv(x)).flatten(1))

    with pytest.raises(UserError, match="functionally"):
        VARIANTS.get("sparta").factory(VARIANTS.get("sparta").make_params({}), Functional(), INFO)


def test_a_stage_prefix_that_matches_nothing_lists_the_activation_paths():
    with pytest.raises(UserError, match=r"\['backbone.stage.1'\] match no activation.*backbone\.stem\.2"):
        build("resnet18", {"width": 4}, [("gelu", {"stages": ["backbone.stage.1"]})])


# --- Sparta ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shared", [True, False])
def test_sparta_is_exactly_relu_at_initialization(shared):
    plain = build("resnet18", {"width": 4})
    sparta = copy.deepcopy(plain)
    VARIANTS.get("sparta").factory(VARIANTS.get("sparta").make_params({"shared": shared}), sparta, INFO)
    assert count(sparta)["ReLU"] == 0 and count(sparta)["Sparta"] == 17
    x = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    for train in (False, True):  # train mode too: BN batch statistics, same in both
        assert torch.equal(plain.train(train)(x), sparta.train(train)(x))


def test_sparta_parameters_do_not_depend_on_the_channel_count():
    info = DataInfo((3, 8, 8), 10, (0.5,) * 3, (0.25,) * 3)
    backbone = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 512, 3, padding=1),
                             nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 10))
    model = normalized(backbone, info)
    VARIANTS.get("sparta").factory(VARIANTS.get("sparta").make_params({"shared": False}), model, info)
    layer16, layer512 = model.backbone[1].attention, model.backbone[3].attention
    assert layer16 is not layer512
    shapes16 = {n: tuple(p.shape) for n, p in layer16.named_parameters()}
    assert shapes16 == {n: tuple(p.shape) for n, p in layer512.named_parameters()}
    assert shapes16 == {"alpha": (1,), "conv.weight": (1, 2, 3, 3), "conv.bias": (1,)}
    # one parameter set really works in both layers: share it and run
    model.backbone[3] = SPARTA.Sparta(layer16, shared_with="backbone.1")
    assert model(torch.rand(2, 3, 8, 8)).shape == (2, 10)


def test_sparta_becomes_spatially_varying_and_input_dependent_once_trained():
    model = build("resnet18", {"width": 4}, [("sparta", {})])
    (attention,) = sparta_attentions(model)
    with torch.no_grad():
        attention.alpha.fill_(0.5)
    activation = model.backbone.stem[2]
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    gate = activation.attention(x)
    assert gate.shape == (2, 1, 8, 8)
    assert torch.equal(activation(x), F.relu(x) * gate)
    assert gate[0].std() > 1e-3, "the same at every position"
    assert not torch.allclose(gate[0], gate[1]), "independent of the input"
    model(torch.rand(4, 3, 8, 8)).sum().backward()
    assert attention.alpha.grad.abs() > 0 and attention.conv.weight.grad.abs().sum() > 0


def test_shared_sparta_is_one_state_dict_entry_and_survives_deepcopy():
    model = build("resnet18", {"width": 4}, [("sparta", {})])
    keys = [k for k in model.state_dict() if "sparta" in k]
    assert keys == ["backbone.stem.2.sparta.alpha", "backbone.stem.2.sparta.conv.weight",
                    "backbone.stem.2.sparta.conv.bias"]
    twin = copy.deepcopy(model)
    activations = [m for m in twin.modules() if isinstance(m, SPARTA.Sparta)]
    assert len({id(m.attention) for m in activations}) == 1
    assert activations[0].attention is sparta_attentions(twin)[0]


def test_replacing_the_owner_of_a_shared_sparta_keeps_the_set_registered():
    model = build("resnet18", {"width": 4}, [("sparta", {}), ("relu", {"stages": ["backbone.stem"]})])
    keys = [k for k in model.state_dict() if "sparta" in k]
    assert keys == ["backbone.stages.0.0.relu1.sparta.alpha", "backbone.stages.0.0.relu1.sparta.conv.weight",
                    "backbone.stages.0.0.relu1.sparta.conv.bias"]
    (attention,) = sparta_attentions(model)
    assert all(m.attention is attention for m in model.modules() if isinstance(m, SPARTA.Sparta))
    assert sum(p.numel() for p in attention.parameters()) == 20
    assert {id(p) for p in attention.parameters()} <= {id(p) for p in model.parameters()}


def _trained_like(model: nn.Module, seed: int) -> None:
    """Give every Sparta set distinct non-initial values, as training would."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for attention in sparta_attentions(model):
            for p in attention.parameters():
                p.copy_(torch.randn(p.shape, generator=gen))


def _sparta_values(model: nn.Module) -> list[dict[str, torch.Tensor]]:
    return [{n: p.detach().clone() for n, p in a.named_parameters()} for a in sparta_attentions(model)]


def test_export_import_frozen_round_trip_resnet18_to_resnet34(tmp_path):
    r18 = build("resnet18", {"width": 4}, [("sparta", {})])
    _trained_like(r18, seed=5)
    exported = PLUGIN.export_sparta(r18, tmp_path / "sparta.safetensors")
    assert sorted(exported) == ["sparta.alpha", "sparta.conv.bias", "sparta.conv.weight"]
    checkpoint = tmp_path / "r18.safetensors"  # what the engine writes for a trained model
    save_model(r18, str(checkpoint))
    for source in (tmp_path / "sparta.safetensors", checkpoint):
        r34 = build("resnet", {"depth": 34, "width": 4},
                    [("sparta", {"load": str(source), "freeze": True})], seed=1)
        assert count(r34)["Sparta"] == 33  # stem + 16 blocks × 2
        (attention,) = sparta_attentions(r34)
        for name, value in attention.named_parameters():
            assert torch.equal(value, exported[f"sparta.{name}"]), name
            assert not value.requires_grad
        before = _sparta_values(r34)
        other = [p.detach().clone() for p in r34.parameters() if p.requires_grad]
        optimizer = torch.optim.SGD(r34.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        x, y = torch.rand(8, 3, 8, 8), torch.arange(8)
        for _ in range(2):
            optimizer.zero_grad()
            F.cross_entropy(r34.train()(x), y).backward()
            optimizer.step()
        for old, new in zip(before, _sparta_values(r34), strict=True):
            assert all(torch.equal(old[n], new[n]) for n in old)
        trained = [p for p in r34.parameters() if p.requires_grad]
        assert any(not torch.equal(a, b) for a, b in zip(other, trained, strict=True))


def test_per_layer_sets_load_by_name_or_by_depth(tmp_path):
    r18 = build("resnet18", {"width": 4}, [("sparta", {"shared": False})])
    _trained_like(r18, seed=6)
    path = tmp_path / "layers.safetensors"
    exported = PLUGIN.export_sparta(r18.state_dict(), path)
    assert len(exported) == 17 * 3 and "backbone.stages.3.1.relu2.sparta.alpha" in exported
    same = build("resnet18", {"width": 4}, [("sparta", {"shared": False, "load": str(path)})], seed=2)
    assert all(torch.equal(a[n], b[n]) for a, b in zip(_sparta_values(r18), _sparta_values(same),
                                                        strict=True) for n in a)
    with pytest.raises(UserError, match='match = "order"'):
        build("resnet", {"depth": 34, "width": 4}, [("sparta", {"shared": False, "load": str(path)})])
    r34 = build("resnet", {"depth": 34, "width": 4},
                [("sparta", {"shared": False, "load": str(path), "match": "order"})])
    loaded = _sparta_values(r34)
    assert len(loaded) == 33
    source = {f"{owner}": v for owner, v in zip(
        [n.removesuffix(".sparta") for n, m in r18.named_modules() if type(m).__name__ == "SpartaAttention"],
        _sparta_values(r18), strict=True)}
    # first and last layers map to the first and last source sets
    assert torch.equal(loaded[0]["alpha"], source["backbone.stem.2"]["alpha"])
    assert torch.equal(loaded[-1]["alpha"], source["backbone.stages.3.1.relu2"]["alpha"])
    with pytest.raises(UserError, match="shared = false"):
        build("resnet18", {"width": 4}, [("sparta", {"load": str(path)})])


def test_load_errors_are_reported_at_validation(tmp_path):
    entry = VARIANTS.get("sparta")
    with pytest.raises(ValueError, match="no such file"):
        entry.make_params({"load": str(tmp_path / "missing.safetensors")})
    (tmp_path / "a.safetensors").write_bytes(b"x")
    (tmp_path / "b.safetensors").write_bytes(b"x")
    with pytest.raises(ValueError, match="matches 2 files"):
        entry.make_params({"load": str(tmp_path / "*.safetensors")})
    with pytest.raises(ValueError, match="sha256"):
        entry.make_params({"load": str(tmp_path / "a.safetensors"), "load_sha256": "0" * 64})
    with pytest.raises(UserError, match="cannot read"):
        build("small-cnn", {"channels": 2, "hidden": 4},
              [("sparta", {"load": str(tmp_path / "a.safetensors")})])


# --- input upsampling -------------------------------------------------------------------------------


def test_upsample_doubles_what_the_backbone_sees_and_keeps_the_input_size():
    plain = build("resnet18", {"width": 4})
    model = build("resnet18", {"width": 4}, [("upsample", {"scale": 2})])
    seen = []
    model.backbone.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0].shape)))
    x = torch.rand(2, 3, 8, 8)
    assert model.eval()(x).shape == (2, 10)
    assert seen == [(2, 3, 16, 16)]
    assert list(model.state_dict()) == list(plain.state_dict())  # same keys: checkpoints load
    with torch.no_grad():
        expected = plain.eval().backbone(F.interpolate(plain.normalize(x), scale_factor=2.0))
        assert torch.equal(model(x), expected)


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
def test_upsample_on_a_model_without_normalize_wraps_it(mode):
    fused = build("small-cnn", {"channels": 2, "hidden": 8}, [("upsample", {"mode": mode})])
    plain = build("small-cnn", {"channels": 2, "hidden": 8})
    inner = nn.Sequential(plain.normalize, plain.backbone)  # no .normalize/.backbone attributes
    entry = VARIANTS.get("upsample")
    wrapped = entry.factory(entry.make_params({"mode": mode}), inner, INFO)
    assert type(wrapped).__name__ == "InputUpsample"
    x = torch.rand(3, 3, 8, 8)
    with torch.no_grad():  # interpolation weights sum to one: it commutes with normalization
        assert torch.allclose(wrapped.eval()(x), fused.eval()(x), atol=1e-5)


def test_upsample_resizes_a_flatten_head_and_rejects_a_fixed_size_model():
    plain = build("small-cnn", {"channels": 2, "hidden": 8})
    model = build("small-cnn", {"channels": 2, "hidden": 8}, [("upsample", {})])
    assert plain.backbone[6].in_features == 64 and model.backbone[6].in_features == 256
    assert model.backbone[6].weight.shape == (8, 256) and model.training  # modes given back
    if "vit" in TIMM_ARCHS:
        entry = COMPONENTS.architectures.get("vit")
        shape = entry.test_input_shape
        info = DataInfo(shape, 10, (0.5,) * shape[0], (0.25,) * shape[0])
        with pytest.raises(UserError, match=r"upsample: .* cannot run on its inputs upsampled ×2"):
            build("vit", entry.test_params, [("upsample", {})], info=info)


def test_upsample_twice_composes():
    model = build("resnet18", {"width": 4}, [("upsample", {"scale": 2}), ("upsample", {"scale": 1.5})])
    seen = []
    model.backbone.register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[-1]))
    model.eval()(torch.rand(1, 3, 8, 8))
    assert seen == [24]


# --- suites ---------------------------------------------------------------------------------------------

SUITE_A = """
name = "variants-a"
datasets = [{ name = "synthetic", params = { channels = 3, train_size = 96, test_size = 24 } }]
metrics = []
recipes = [{ name = "standard-digits", epochs = 1 }]
attacks = ["fgsm-linf-0.1"]

[[architectures]]
name = "resnet18"
params = { width = 2 }
variants = ["sparta", { name = "upsample", params = { scale = 2 } }]
"""

SUITE_B = """
name = "variants-b"
datasets = [{{ name = "synthetic", params = {{ channels = 3, train_size = 96, test_size = 24, seed = 1 }} }}]
metrics = []
architectures = [
    {{ name = "resnet", params = {{ depth = 34, width = 4 }}, variants = [
        {{ name = "sparta", params = {{ load = "{checkpoint}", freeze = true }} }}] }},
    {{ name = "small-cnn", params = {{ channels = 4, hidden = 16 }}, variants = [
        {{ name = "activation", params = {{ fn = "gelu", stages = ["backbone.1"] }} }}] }},
]
recipes = [{{ name = "standard-digits", epochs = 1 }}]
attacks = ["fgsm-linf-0.1"]
"""


def test_suites_with_variants_validate_run_and_transfer_sparta(tmp_path, run_cli):
    suite_a = tmp_path / "a.toml"
    suite_a.write_text(SUITE_A)
    out_a = tmp_path / "a"
    assert run_cli("validate", suite_a).exit_code == 0
    result = run_cli("run", suite_a, "--output", out_a)
    assert result.exit_code == 0, result.output
    (checkpoint,) = (out_a / "checkpoints").glob("*.safetensors")
    trained = SPARTA.read_sparta(checkpoint)[0]
    assert len(trained) == 1 and float(trained[0][1]["alpha"]) != 0  # α learned in one epoch

    suite_b = tmp_path / "b.toml"
    suite_b.write_text(SUITE_B.format(checkpoint=checkpoint))
    validated = run_cli("validate", suite_b)
    assert validated.exit_code == 0, validated.output
    result = run_cli("run", suite_b, "--output", tmp_path / "b")
    assert result.exit_code == 0, result.output
    sets = [load_file(str(p)) for p in (tmp_path / "b" / "checkpoints").glob("*.safetensors")]
    frozen = [s for s in sets if any(k.endswith("sparta.alpha") for k in s)]
    assert len(frozen) == 1
    keys = sorted(k for k in frozen[0] if re.search(r"sparta\.", k))
    assert keys == ["backbone.stem.2.sparta.alpha", "backbone.stem.2.sparta.conv.bias",
                    "backbone.stem.2.sparta.conv.weight"]
    for key in keys:  # frozen through a whole training epoch
        assert torch.equal(frozen[0][key], trained[0][1][key.split("sparta.")[1]])


def test_a_missing_load_file_fails_validation_with_its_location(tmp_path, run_cli):
    suite = tmp_path / "b.toml"
    suite.write_text(SUITE_B.format(checkpoint=tmp_path / "nowhere.safetensors"))
    result = run_cli("validate", suite)
    assert result.exit_code == 2
    assert "architectures[0].variants[0].params.load" in result.output
    assert "no such file" in result.output


def test_catalogue_presets_resolve(write_suite, run_cli):
    presets = [p.name for p in COMPONENTS.catalogue.items("architectures")
               if Path(p.source).name == "architectures-variants.toml"]
    assert len(presets) >= 10
    suite = write_suite(f"""
        datasets = [{{ name = "synthetic", params = {{ channels = 3, size = 32 }} }}]
        architectures = {presets!r}
        recipes = ["standard-digits"]
        """.replace("'", '"'))
    result = run_cli("validate", suite)
    assert result.exit_code == 0, result.output


def test_the_load_files_content_is_part_of_the_cell_hash(tmp_path):
    """Overwriting the loaded file makes a new cell: a stored result of the old one never
    stands in for it (``load`` is a harness.LocalFile)."""
    r18 = build("resnet18", {"width": 4}, [("sparta", {})])
    path = tmp_path / "sparta.safetensors"
    suite = tmp_path / "b.toml"
    suite.write_text(SUITE_B.format(checkpoint=path))

    def cell_hashes(export_seed: int | None = None) -> list[str]:
        if export_seed is not None:
            _trained_like(r18, seed=export_seed)
            PLUGIN.export_sparta(r18, path)
        return [cell.hash for cell in build_plan(COMPONENTS, load_suite(suite)).train_cells]

    # the file's bytes are hashed (safetensors may order its metadata differently on each write,
    # so a rewrite with the same values can be a new cell too: recomputed, never stale)
    first, again, changed = cell_hashes(5), cell_hashes(), cell_hashes(6)
    assert first == again
    assert changed[0] != first[0]  # the resnet-34 that loads the file
    assert changed[1] == first[1]  # the small CNN that does not
