"""timm transformers and modern nets (plugins/timm_models/, registries/architectures-timm.toml).

Parameter counts are taken on the meta device (no memory, no init, no forward). Forward passes
use each factory's tiny ``test_params``: the geometry (img_size, patches, windows, strides) does
not depend on width or depth, so what fits a tiny model fits the full one.
"""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from harness import DataInfo, UserError

CIFAR = (3, 32, 32)
DIGITS = (1, 8, 8)


@pytest.fixture(scope="module")
def plugin(components):
    """The plugin package as the harness loaded it, for its modules' pure functions."""
    return components.pm.get_plugin("timm_models")


def info_for(shape: tuple[int, ...], classes: int = 10) -> DataInfo:
    return DataInfo(shape, classes, (0.5,) * shape[0], (0.25,) * shape[0])


def params_of(components, name: str, **overrides):
    """(entry, params) of a factory or a preset, with ``overrides`` merged over the preset's."""
    preset = components.catalogue.get("architectures", name)
    entry = components.architectures.get(preset.spec.factory if preset else name)
    values = {**(dict(preset.spec.params) if preset else {}), **overrides}
    return entry, entry.make_params(values)


def build(components, name: str, shape=CIFAR, seed: int = 0, **overrides) -> nn.Module:
    entry, params = params_of(components, name, **overrides)
    torch.manual_seed(seed)
    return entry.factory(params, info_for(shape))


def tiny(components, family: str, shape, **overrides) -> nn.Module:
    entry = components.architectures.get(family)
    return build(components, family, shape, **{**entry.test_params, **overrides})


def count_on_meta(components, name: str, shape=CIFAR) -> int:
    with components.pm.get_plugin("timm_models").builders.on_meta():
        model = build(components, name, shape)
    assert all(p.is_meta for p in model.parameters())
    return sum(p.numel() for p in model.parameters())


# --- parameter counts -------------------------------------------------------------------------------

#: preset → exact count at 10 classes on 3×32×32 (1×8×8 for -digits). Where toolkits.md measured
#: timm directly (section 4) the millions agree: vit_tiny/4 5.36M, vit_small/4 21.3M, deit_tiny
#: 5.36M, cait_xxs24 11.6M, pvt_v2_b0 3.41M (timm's sr) / 2.94M (sr 1), swin_tiny 27.5M,
#: levit_128s 7.0M, convnext_atto 3.38M, convnext_tiny 27.8M, poolformer_s12 11.4M.
COUNTS = {
    "vit-t-patch4": 5_362_762,
    "deit-t-patch4": 5_362_762,
    "pvt-v2-b0": 2_943_850,
    "pvt-v2-b0-sr8421": 3_412_330,
    "levit-128s": 7_004_956,
    "convnext-atto": 3_377_730,
    "convmixer-256-8": 594_186,
    "vit-t-patch2-digits": 340_954,
    "convnext-atto-digits": 871_930,
    "poolformer-s12-digits": 720_730,
    "convmixer-64-8-digits": 49_546,
    # the large ones: about 0.5 s each on the meta device
    "vit-s-patch4": 21_342_346,
    "cait-xxs24": 11_601_610,
    "coatnet-0": 24_224_246,
    "swin-t": 27_505_300,
    "convnext-t": 27_827_818,
    "poolformer-s12": 11_407_306,
    "mlp-mixer-s": 17_110_026,
    "cait-xxs24-digits": 740_170,
    "swin-t-digits": 1_733_860,
    "pvt-v2-b0-digits": 2_940_714,
    "mlp-mixer-s-digits": 1_077_002,
}


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_parameter_counts(components, name):
    shape = DIGITS if name.endswith("-digits") else CIFAR
    count = count_on_meta(components, name, shape)
    assert count == COUNTS[name], f"{name}: {count:,}"
    millions = f"{count / 1e6:.2f}M"
    assert millions in components.catalogue.get("architectures", name).description, \
        f"{name}: the description should say {millions}"


def test_every_preset_has_a_count_and_fits_its_scale(components):
    mine = [p for p in components.catalogue.items("architectures")
            if p.source.name == "architectures-timm.toml"]
    assert {p.name for p in mine} == set(COUNTS)
    for preset in mine:
        entry, params = params_of(components, preset.name)
        assert entry.plugin == "timm_models"
        shape = DIGITS if preset.name.endswith("-digits") else CIFAR
        assert entry.check_input(params, shape) is None, preset.name


# --- adaptation to the input size ------------------------------------------------------------------


@pytest.mark.parametrize(("family", "shape", "expected"), [
    ("vit", DIGITS, {"img_size": (8, 8), "patch_size": 2}),
    ("vit", CIFAR, {"img_size": (32, 32), "patch_size": 4}),
    ("vit", (3, 224, 224), {"img_size": (224, 224), "patch_size": 16}),
    ("vit", (3, 34, 34), {"img_size": (34, 34), "patch_size": 2}),  # 4 does not divide 34
    ("vit", (1, 16, 8), {"img_size": (16, 8), "patch_size": 2}),
    ("cait", CIFAR, {"img_size": (32, 32), "patch_size": 4}),
    ("mlp-mixer", DIGITS, {"img_size": (8, 8), "patch_size": 2}),
    ("swin", DIGITS, {"img_size": (8, 8), "patch_size": 1, "window_size": 4}),
    ("swin", CIFAR, {"img_size": (32, 32), "patch_size": 4, "window_size": 4}),
    ("swin", (3, 224, 224), {"img_size": (224, 224), "patch_size": 4, "window_size": 7}),
    ("pvt-v2", DIGITS, {"sr_ratios": (1, 1, 1, 1)}),
    ("pvt-v2", CIFAR, {"sr_ratios": (1, 1, 1, 1)}),
    ("pvt-v2", (3, 64, 64), {"sr_ratios": (2, 1, 1, 1)}),
    ("pvt-v2", (3, 224, 224), {"sr_ratios": (8, 4, 2, 1)}),  # timm's own at its own size
    ("coatnet", CIFAR, {"img_size": (32, 32)}),
    ("levit", (3, 16, 16), {"img_size": (16, 16)}),
    ("convnext", DIGITS, {"patch_size": 1}),
    ("convnext", CIFAR, {"patch_size": 4}),
    ("poolformer", DIGITS, {"stem_stride": 1}),
    ("poolformer", CIFAR, {"stem_stride": 4}),
    ("convmixer", DIGITS, {"patch_size": 1}),
    ("convmixer", CIFAR, {"patch_size": 2}),
])
def test_adapted_kwargs(components, plugin, family, shape, expected):
    _, params = params_of(components, family)
    assert plugin.geometry.adapted_kwargs(family, params, shape) == expected


def test_explicit_params_and_kwargs_win_over_the_adaptation(components, plugin):
    _, params = params_of(components, "vit", patch_size=1, kwargs={"depth": 2})
    assert plugin.geometry.adapted_kwargs("vit", params, DIGITS) == {"img_size": (8, 8), "patch_size": 1,
                                                                     "depth": 2}
    _, params = params_of(components, "vit", kwargs={"patch_size": 8, "img_size": 16})
    assert plugin.geometry.adapted_kwargs("vit", params, CIFAR) == {"img_size": 16, "patch_size": 8}


def test_built_models_use_the_adapted_geometry(components):
    """The kwargs reach timm: patch grids, Swin windows, ConvNeXt/PoolFormer stems, PVT reduction."""
    for shape, patch, grid in ((DIGITS, 2, 4), (CIFAR, 4, 8)):
        vit = tiny(components, "vit", shape).backbone
        assert vit.patch_embed.patch_size == (patch, patch) and vit.patch_embed.grid_size == (grid, grid)
        assert vit.patch_embed.proj.in_channels == shape[0] and vit.head.out_features == 10
    swin = tiny(components, "swin", DIGITS).backbone
    assert swin.patch_embed.patch_size == (1, 1)
    assert swin.layers[0].blocks[0].window_size == (4, 4)
    assert tiny(components, "convnext", DIGITS).backbone.stem[0].stride == (1, 1)
    assert tiny(components, "convnext", CIFAR).backbone.stem[0].stride == (4, 4)
    assert tiny(components, "poolformer", DIGITS).backbone.stem.conv.stride == (1, 1)
    assert tiny(components, "poolformer", CIFAR).backbone.stem.conv.stride == (4, 4)
    pvt = tiny(components, "pvt-v2", CIFAR).backbone
    assert all(block.attn.sr is None for stage in pvt.stages for block in stage.blocks)
    pvt = tiny(components, "pvt-v2", CIFAR, sr_ratios=[8, 4, 2, 1]).backbone
    assert pvt.stages[0].blocks[0].attn.sr.kernel_size == (8, 8)


def test_levit_has_one_head_and_normalization_is_inside(components):
    model = tiny(components, "levit", (3, 16, 16))
    assert type(model.backbone).__name__ == "Levit"  # not LevitDistilled: no distillation head
    assert torch.equal(model.normalize.mean.flatten(), torch.full((3,), 0.5))
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), model.backbone((x - 0.5) / 0.25))


# --- inputs a model cannot take: rejected at validation, with the reason ---------------------------

#: Sides (square inputs) at which a real forward of the tiny model is compared with the rule. The
#: rule is exact on these; it is cautious elsewhere: CoAtNet happens to run at 31×31 (the stride-2
#: rounding lands on its tables) but is rejected there, as every side not a multiple of 32.
SIDES = (1, 2, 3, 7, 8, 12, 16, 24, 32, 48)
FAMILIES = ("vit", "deit", "cait", "mlp-mixer", "swin", "pvt-v2", "coatnet", "levit", "convnext",
            "poolformer", "convmixer")


def _runs(model: nn.Module, shape: tuple[int, ...]) -> bool:
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *shape))
    except (RuntimeError, ValueError, AssertionError, ZeroDivisionError):  # 1.0.9 Swin: 0×0 maps
        return False
    return True


@pytest.mark.parametrize("family", FAMILIES)
def test_input_rule_agrees_with_a_real_forward(components, plugin, family):
    """Accepted sizes run; rejected sizes really fail in timm (the rule is not just cautious)."""
    entry = components.architectures.get(family)
    params = entry.make_params(entry.test_params)
    for shape in [(1, s, s) for s in SIDES] + [(1, 16, 32), (1, 32, 64)]:
        rule = plugin.families.size_problem(family, params, shape)
        kw = plugin.geometry.adapted_kwargs(family, params, shape)
        torch.manual_seed(0)
        model = plugin.builders.build_checked(family, params, 1, 10, kw)
        assert (rule is None) == _runs(model, shape), f"{family} at {shape}: rule says {rule!r}"


def test_minimum_inputs(plugin, components):
    swin = 8 if plugin.builders.swin_halves_down() else 1  # timm 1.0.9 rounds stage maps down
    assert {f: plugin.families.minimum_input(f) for f in FAMILIES} == {
        "vit": 1, "deit": 1, "cait": 1, "mlp-mixer": 1, "swin": swin, "pvt-v2": 1, "coatnet": 32,
        "levit": 16, "convnext": 8, "poolformer": 1, "convmixer": 1}
    _, stride4 = params_of(components, "poolformer", stem_stride=4)
    assert plugin.families.minimum_input("poolformer", stride4) == 3
    _, patch4 = params_of(components, "convnext", patch_size=4)
    assert plugin.families.minimum_input("convnext", patch4) == 32
    for family in FAMILIES:  # conformance runs at digits size, or the smallest size above it
        entry = components.architectures.get(family)
        side = max(8, plugin.families.minimum_input(family))
        assert entry.test_input_shape == (1, side, side), family


COATNET_ON_DIGITS = (
    "coatnet needs inputs whose sides are multiples of 32 (total stride 32; timm sizes its "
    "relative-position tables for img_size // 32 and an odd map breaks them), and 8×8 is too small: "
    "for small inputs use vit (patch 2 at 8×8, e.g. preset vit-t-patch2-digits), deit, cait, swin, "
    "pvt-v2, convnext, poolformer, convmixer or mlp-mixer")


def test_too_small_input_messages(components):
    entry, params = params_of(components, "coatnet-0")
    assert entry.check_input(params, DIGITS) == COATNET_ON_DIGITS
    assert "multiples of 32" in entry.check_input(params, (3, 48, 48))
    assert "48×48 is not a multiple of it" in entry.check_input(params, (3, 48, 48))
    entry, params = params_of(components, "levit-128s")
    assert entry.check_input(params, DIGITS).startswith(
        "levit needs inputs whose sides are multiples of 16 (total stride 16;")
    entry, params = params_of(components, "pvt-v2-b0-sr8421")
    assert entry.check_input(params, DIGITS) == (
        "pvt-v2: sr_ratios[0] = 8 is larger than the 2×2 map of stage 1 at 8×8 inputs (its reduction "
        "conv has kernel 8); use at most 2 or leave sr_ratios unset to adapt it")
    entry, params = params_of(components, "vit-t-patch4")
    assert entry.check_input(params, (3, 30, 30)) == (
        "vit: patch_size 4 does not divide 30×30 inputs (timm would silently ignore the border pixels); "
        "use patch_size = 3 or leave it unset to adapt it")
    entry, params = params_of(components, "convnext", patch_size=4)
    assert entry.check_input(params, DIGITS) == (
        "convnext with patch_size 4 has total stride 32, too large for 8×8 inputs (a 2×2 downsampling "
        "conv meets a 1×1 map); use patch_size = 1 (total stride 8) or leave it unset to adapt it")
    assert entry.check_input(params, (3, 8)) == "convnext needs (C, H, W) images, not inputs of shape (3, 8)"


def test_swin_rule_where_timm_rounds_stage_maps_down(components, plugin):
    """timm 1.0.9 (robustbench's pin) halves Swin's maps rounding down: 7×7 at patch 1 ends at 0×0."""
    _, params = params_of(components, "swin", **components.architectures.get("swin").test_params)
    assert plugin.geometry.input_problem("swin", params, (1, 7, 7), swin_halves_down=True) == (
        "swin: this timm halves stage maps rounding down (timm 1.0.9; later releases round up), so 7×7 "
        "inputs with patch 1 leave a 0×0 map by stage 4; use inputs of at least 8×8")
    assert plugin.geometry.input_problem("swin", params, (1, 8, 8), swin_halves_down=True) is None
    assert plugin.geometry.input_problem("swin", params, (1, 7, 7)) is None
    _, patch2 = params_of(components, "swin", patch_size=2)
    assert plugin.geometry.input_problem("swin", patch2, (1, 14, 14), swin_halves_down=True).endswith(
        "use inputs of at least 16×16, or a smaller patch_size")


def test_the_factory_raises_the_same_reason_instead_of_a_shape_error(components):
    entry, params = params_of(components, "coatnet-0")
    with pytest.raises(UserError) as caught:
        entry.factory(params, info_for(DIGITS))
    assert str(caught.value) == COATNET_ON_DIGITS


def test_validate_rejects_coatnet_on_digits(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "suite.toml").write_text(
        'datasets = ["digits"]\narchitectures = ["vit-t-patch2-digits", "coatnet-0"]\n'
        'recipes = ["standard-digits"]\nattacks = ["fgsm-linf-0.1"]\n', encoding="utf-8")
    result = run_cli("validate", "suite.toml")
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: suite.toml: architectures[1]: {COATNET_ON_DIGITS} "
                                     "(dataset 'digits' has inputs of shape (1, 8, 8))")


def test_named_factory_kwargs_are_probed_at_validation(components):
    """kwargs may change the geometry or be unknown to timm: checked by a meta-device build."""
    entry, params = params_of(components, "vit", kwargs={"bogus": 1})
    problem = entry.check_input(params, DIGITS)
    assert problem == ("timm's vit_tiny_patch16_224 does not accept these kwargs: "
                       "VisionTransformer.__init__() got an unexpected keyword argument 'bogus'")
    entry, params = params_of(components, "vit", kwargs={"img_size": 32})
    assert "Input height (8) doesn't match model (32)" in entry.check_input(params, DIGITS)
    entry, params = params_of(components, "vit", kwargs={"depth": 1})
    torch.manual_seed(0)
    expected_next = torch.rand(1)
    torch.manual_seed(0)
    assert entry.check_input(params, DIGITS) is None
    assert torch.equal(torch.rand(1), expected_next), "validation moved the global RNG"


def test_reserved_kwargs_are_rejected(components):
    entry = components.architectures.get("vit")
    with pytest.raises(ValidationError, match="num_classes and in_chans come from the dataset"):
        entry.make_params({"kwargs": {"num_classes": 100}})


# --- the generic passthrough ----------------------------------------------------------------------


def test_generic_timm_passthrough_with_overrides(components, plugin):
    kwargs = {"img_size": 8, "patch_size": 2, "depth": 2, "embed_dim": 32, "num_heads": 2}
    model = build(components, "timm", DIGITS, model="vit_tiny_patch16_224", kwargs=kwargs)
    backbone = model.backbone
    assert type(backbone).__name__ == "VisionTransformer"
    assert len(backbone.blocks) == 2 and backbone.embed_dim == 32
    assert backbone.patch_embed.proj.in_channels == 1 and backbone.head.out_features == 10
    assert model(torch.rand(3, *DIGITS)).shape == (3, 10)
    plain = build(components, "timm", CIFAR, model="resnet18")
    assert type(plain.backbone).__name__ == "ResNet" and plain.backbone.fc.out_features == 10
    with plugin.builders.on_meta():  # toolkits.md section 4: coatnet_0_rw_224 at img_size 32 is 26.6M
        rw = build(components, "timm", CIFAR, model="coatnet_0_rw_224", kwargs={"img_size": 32})
    assert round(sum(p.numel() for p in rw.parameters()) / 1e6, 1) == 26.6


def test_generic_timm_validation_messages(components):
    entry = components.architectures.get("timm")
    check = entry.check_input
    assert check(entry.make_params({"model": "vit_tiny_patch16_224"}), DIGITS) == (
        "timm's vit_tiny_patch16_224 with kwargs {} does not run on inputs of shape (1, 8, 8): "
        "AssertionError: Input height (8) doesn't match model (224); timm's vision transformers are "
        "sized for 224×224: set kwargs img_size (and patch_size), or use this plugin's factories, "
        "which adapt them")
    assert check(entry.make_params({"model": "vit_tiny_patch16_22"}), DIGITS).startswith(
        "timm has no model 'vit_tiny_patch16_22'. Did you mean: vit_tiny_patch16_224")
    problem = check(entry.make_params({"model": "mixer_s16_224", "kwargs": {"patch_size": 2}}), DIGITS)
    assert problem.startswith("timm's mixer_s16_224 fixes an argument you override in kwargs")
    assert "use this plugin's factory for that family" in problem
    assert check(entry.make_params({"model": "convnext_atto"}), DIGITS).endswith(
        "; the input is too small for the model's total stride")
    assert check(entry.make_params({"model": "convnext_atto"}), CIFAR) is None


def test_pretrained_weights_must_be_local(components, tmp_path):
    entry = components.architectures.get("timm")
    with pytest.raises(ValidationError, match="pretrained = true needs checkpoint = a local weights file"):
        entry.make_params({"model": "resnet18", "pretrained": True})
    missing = entry.make_params({"model": "resnet18", "pretrained": True,
                                 "checkpoint": str(tmp_path / "none.pth")})
    assert "is not a file: pretrained weights must be available locally" in entry.check_input(missing, CIFAR)
    with pytest.raises(UserError, match="is not a file"):
        entry.factory(missing, info_for(CIFAR))


TINY_VIT_KWARGS = {"img_size": 8, "patch_size": 2, "depth": 1, "embed_dim": 16, "num_heads": 2}


def save_vit(tmp_path, classes: int, in_chans: int = 1, name: str = "weights.safetensors", **kwargs):
    """A tiny timm ViT with random weights, saved as timm saves one: (model, path)."""
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(1)
    source = timm.create_model("vit_tiny_patch16_224", num_classes=classes, in_chans=in_chans,
                               **{**TINY_VIT_KWARGS, **kwargs}).eval()
    path = tmp_path / name
    save_file(source.state_dict(), str(path))
    return source, path


def load_vit(components, path, **params):
    return build(components, "timm", DIGITS, model="vit_tiny_patch16_224", kwargs=TINY_VIT_KWARGS,
                 pretrained=True, checkpoint=str(path), **params).eval()


def test_a_checkpoint_head_of_the_dataset_class_count_is_kept(components, tmp_path):
    """timm alone compares 10 classes with its 1000-class config and puts a random head in place."""
    source, path = save_vit(tmp_path, classes=10)
    model = load_vit(components, path)
    x = torch.rand(4, *DIGITS)
    with torch.no_grad():
        assert torch.equal(model.backbone(x), source(x))
        assert torch.equal(model(x), source(model.normalize(x)))


def test_checkpoint_stem_is_adapted_and_a_new_head_is_asked_for(components, tmp_path):
    """A 3-channel 7-class checkpoint for a 1-channel 10-class dataset: timm's stem adaptation;
    the head is replaced only with new_head = true."""
    source, path = save_vit(tmp_path, classes=7, in_chans=3)
    with pytest.raises(UserError) as caught:
        load_vit(components, path)
    assert str(caught.value) == (
        f"checkpoint {path}: its classifier head has 7 classes and the dataset 10: set new_head = true to "
        "train a new classifier for this dataset (fine-tuning), or use a checkpoint with 10 classes")
    model = load_vit(components, path, new_head=True).backbone
    assert torch.equal(model.blocks[0].attn.qkv.weight, source.blocks[0].attn.qkv.weight)
    assert torch.allclose(model.patch_embed.proj.weight, source.patch_embed.proj.weight.sum(1, keepdim=True))
    assert model.head.weight.shape == (10, 16)
    with pytest.raises(ValidationError, match="new_head replaces a checkpoint's classifier"):
        components.architectures.get("timm").make_params({"model": "resnet18", "new_head": True})


def test_checkpoint_keys_and_shapes_must_fit(components, tmp_path):
    _, deeper = save_vit(tmp_path, classes=10, name="deeper.safetensors", depth=2)
    what = f"timm's vit_tiny_patch16_224 with kwargs {TINY_VIT_KWARGS}"
    with pytest.raises(UserError) as caught:
        load_vit(components, deeper)
    assert str(caught.value) == (
        f"checkpoint {deeper} does not fit {what}: unexpected keys blocks.1.attn.proj.bias, "  # sorted
        "blocks.1.attn.proj.weight, blocks.1.attn.qkv.bias, blocks.1.attn.qkv.weight, … (12 in all). "
        "Build the model it was saved from (the same timm model name and kwargs)")
    _, wider = save_vit(tmp_path, classes=10, name="wider.safetensors", embed_dim=32)
    with pytest.raises(UserError, match=r"does not fit .*: shapes \(checkpoint vs model\) cls_token "
                                        r"\(1, 1, 32\) vs \(1, 1, 16\), pos_embed"):
        load_vit(components, wider)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=f"checkpoint {garbage} cannot be read as a state dict"):
        load_vit(components, garbage)


def test_a_harness_checkpoint_loads_into_the_whole_model(components, tmp_path):
    """Keys backbone.* and normalize.*: the normalized model as trained, its normalization too."""
    from safetensors.torch import save_file

    entry, params = params_of(components, "timm", model="vit_tiny_patch16_224", kwargs=TINY_VIT_KWARGS)
    torch.manual_seed(2)
    trained = entry.factory(params, DataInfo(DIGITS, 10, (0.3,), (0.2,))).eval()
    path = tmp_path / "harness.safetensors"
    save_file(trained.state_dict(), str(path))
    assert {k.split(".")[0] for k in trained.state_dict()} == {"backbone", "normalize"}
    model = load_vit(components, path)  # built for digits' own mean and std
    x = torch.rand(4, *DIGITS)
    with torch.no_grad():
        assert torch.equal(model(x), trained(x))


# --- activations (for activation-swap variants) ----------------------------------------------------

#: family → activation-module classes in its default-size model (test_params only shrink widths
#: and depths, so the classes are the same). torch's GELU is not timm's GELU.
ACTIVATIONS = {
    "vit": {"torch.nn.modules.activation.GELU"},
    "deit": {"torch.nn.modules.activation.GELU"},
    "cait": {"torch.nn.modules.activation.GELU"},
    "mlp-mixer": {"torch.nn.modules.activation.GELU"},
    "swin": {"torch.nn.modules.activation.GELU", "torch.nn.modules.activation.Softmax"},
    "pvt-v2": {"torch.nn.modules.activation.GELU"},
    "coatnet": {"timm.layers.activations.GELU", "torch.nn.modules.activation.SiLU",
                "timm.layers.activations.Sigmoid", "timm.layers.activations.Tanh"},
    "levit": {"torch.nn.modules.activation.Hardswish"},
    "convnext": {"timm.layers.activations.GELU"},
    "poolformer": {"torch.nn.modules.activation.GELU"},
    "convmixer": {"torch.nn.modules.activation.GELU"},
}


@pytest.mark.parametrize("family", FAMILIES)
def test_activation_classes(components, plugin, family):
    shape = components.architectures.get(family).test_input_shape
    model = tiny(components, family, shape)
    found = plugin.activation_classes(model)
    assert set(found) == ACTIVATIONS[family]
    if "timm.layers.activations.GELU" in found:  # what an nn.GELU-only swap would miss
        import timm.layers.activations

        assert not issubclass(timm.layers.activations.GELU, nn.GELU)
    if family == "convnext":
        assert not any(isinstance(m, nn.GELU) for m in model.modules())
