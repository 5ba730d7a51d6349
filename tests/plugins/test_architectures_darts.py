"""DARTS-space networks (plugins/darts/, registries/architectures-darts.toml).

Genotypes are taken from the registered factory's params model, as a suite would: the tests go
through ``components`` (the loaded plugins), never import the plugin module. Parameter counts are
taken on the meta device; forward passes use C = 4 and few cells.
"""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from harness import DataInfo, UserError
from harness.plan import build_plan
from harness.runner import Runner
from harness.session import load_components
from harness.store import Store
from harness.suite import load_suite
from harness.tomlfile import Where
from harness.train import Trainer

GENOTYPE_NAMES = ["RACL", "DARTS_V1", "DARTS_V2", "PDARTS", "PC_DARTS", "ADVRUSH", "NASNET",
                  "AMOEBANET"]
DARTS_SPACE = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
               "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
CIFAR = (3, 32, 32)
DIGITS = (1, 8, 8)

#: studies.md §2, the RACL genotype (sep3/sep5 = sep_conv_3x3/5x5, dil3 = dil_conv_3x3, ...).
RACL_NORMAL = [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_5x5", 0), ("skip_connect", 1),
               ("sep_conv_3x3", 0), ("skip_connect", 3), ("sep_conv_3x3", 3), ("skip_connect", 4)]
RACL_REDUCE = [("sep_conv_3x3", 0), ("sep_conv_5x5", 1), ("avg_pool_3x3", 0), ("dil_conv_3x3", 1),
               ("sep_conv_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_3x3", 2), ("dil_conv_3x3", 3)]


@pytest.fixture(scope="module")
def entry():
    from harness.session import load_components

    return load_components(autoload=False).architectures.get("darts")


def info_for(shape: tuple[int, int, int], classes: int = 10) -> DataInfo:
    return DataInfo(shape, classes, (0.5,) * shape[0], (0.25,) * shape[0])


def build(entry, shape=DIGITS, classes: int = 10, seed: int = 0, **params) -> nn.Module:
    torch.manual_seed(seed)
    return entry.factory(entry.make_params({"C": 4, "layers": 3, **params}), info_for(shape, classes))


def network(model: nn.Module) -> nn.Module:
    """What a metrics plugin does to find the DARTS network inside a wrapped model."""
    return next(m for m in model.modules() if getattr(m, "search_space", None) == "darts")


# --- building at every size -----------------------------------------------------------------------


@pytest.mark.parametrize("shape", [DIGITS, CIFAR], ids=["8x8x1", "32x32x3"])
@pytest.mark.parametrize("genotype", GENOTYPE_NAMES)
def test_each_genotype_gives_logits(entry, genotype, shape):
    model = build(entry, shape, classes=7, genotype=genotype).eval()
    with torch.no_grad():
        logits = model(torch.rand(3, *shape))
    assert logits.shape == (3, 7)
    assert torch.isfinite(logits).all()
    net = network(model)
    assert [cell.reduction for cell in net.cells] == [False, True, True]
    for cell in net.cells:
        pairs, concat = net.genotype.cell(cell.reduction)
        assert [(e.op_name, e.input) for e in cell.edges()] == pairs
        assert cell.concat == concat
        if genotype not in {"NASNET", "AMOEBANET"}:  # the DARTS space: 4 nodes, 8 ops, all concat
            assert len(pairs) == 8 and concat == [2, 3, 4, 5]
            assert {op for op, _ in pairs} <= set(DARTS_SPACE)


@pytest.mark.parametrize("shape", [(1, 7, 7), (3, 1, 1), (2, 13, 9)])
def test_odd_and_tiny_inputs(entry, shape):
    """Every stride-2 op (FactorizedReduce included) rounds up, so odd sizes concatenate."""
    model = build(entry, shape, genotype="ADVRUSH").eval()  # stride-2 skip: FactorizedReduce
    net = network(model)
    seen = []
    net.get_submodule(net.feature_map_module).register_forward_hook(
        lambda _m, _i, out: seen.append(tuple(out.shape[1:])))
    with torch.no_grad():
        assert model(torch.rand(2, *shape)).shape == (2, 10)
    assert seen[-1] == net.feature_map_shape(shape)
    halved_twice = [math.ceil(math.ceil(side / 2) / 2) for side in shape[1:]]
    assert list(seen[-1][1:]) == halved_twice


def test_channels_and_reductions_follow_darts(entry):
    """Stem 3·C; reductions at layers//3 and 2·layers//3 double C; output 4 nodes × final C."""
    net = network(build(entry, CIFAR, genotype="DARTS_V2", C=6, layers=8))
    assert net.stem[0].out_channels == 18
    assert [i for i, cell in enumerate(net.cells) if cell.reduction] == [2, 5]
    assert net.classifier.in_features == 4 * 6 * 4
    assert net.feature_map_shape(CIFAR) == (96, 8, 8)
    assert net.feature_map_shape(DIGITS) == (96, 2, 2)


# --- parameter counts -------------------------------------------------------------------------------

#: genotype → (parameters at C = 36, 20 cells, 10 classes, 3×32×32, no auxiliary head; the paper's M).
#: 3,349,342 is what the DARTS repository logs for DARTS_V2 ("param size = 3.349342MB", which
#: excludes the auxiliary head); P-DARTS, PC-DARTS and AdvRush quote 3.4M, 3.6M and 4.2M.
PAPER_COUNTS = {
    "DARTS_V2": (3_349_342, 3.3),
    "PDARTS": (3_433_798, 3.4),
    "PC_DARTS": (3_634_678, 3.6),
    "ADVRUSH": (4_158_046, 4.2),
}


def count_on_meta(entry, **params) -> int:
    with torch.device("meta"):
        model = entry.factory(entry.make_params({"C": 36, "layers": 20, **params}), info_for(CIFAR))
    assert all(p.is_meta for p in model.parameters())
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("genotype", list(PAPER_COUNTS))
def test_parameter_counts_match_the_papers(entry, genotype):
    exact, paper = PAPER_COUNTS[genotype]
    count = count_on_meta(entry, genotype=genotype)
    assert count == exact
    assert round(count / 1e6, 1) == paper


def test_auxiliary_head_size(entry):
    """ReLU-pool-conv1×1(576→128)-BN-ReLU-conv2×2(128→768)-BN-ReLU-FC(768→10): 476,426 params."""
    extra = count_on_meta(entry, genotype="DARTS_V2", auxiliary=True) - 3_349_342
    assert extra == 576 * 128 + 2 * 128 + 128 * 768 * 4 + 2 * 768 + 768 * 10 + 10 == 476_426


# --- the RACL genotype and the edge interface ------------------------------------------------------


def test_racl_genotype_is_the_published_one(entry):
    genotype = network(build(entry, genotype="racl")).genotype
    assert genotype.normal == RACL_NORMAL
    assert genotype.reduce == RACL_REDUCE
    assert genotype.cell(False)[1] == genotype.cell(True)[1] == [2, 3, 4, 5]


def test_racl_edges_expose_ops_for_a_lipschitz_bound(entry):
    net = network(build(entry, genotype="RACL"))
    normal, reduce = net.cells[0], net.cells[1]
    edges = list(normal.edges())
    assert [(e.op_name, e.input) for e in edges] == RACL_NORMAL
    assert [e.node for e in edges] == [2, 2, 3, 3, 4, 4, 5, 5]
    assert [e.kind for e in edges] == ["conv", "conv", "conv", "skip", "conv", "skip", "conv", "skip"]
    assert all(isinstance(e.module, nn.Identity) for e in edges if e.kind == "skip")
    assert all(any(isinstance(m, nn.Conv2d) for m in e.module.modules())
               for e in edges if e.kind == "conv")
    assert [e.module for e in edges] == list(normal.ops)
    redges = list(reduce.edges())
    assert [(e.op_name, e.input) for e in redges] == RACL_REDUCE
    # Only the edges reading a cell input (0 or 1) downsample in a reduction cell.
    assert [e.stride for e in redges] == [2, 2, 2, 2, 2, 2, 1, 1]
    pool = redges[2]
    assert pool.kind == "pool" and isinstance(pool.module, nn.AvgPool2d) and pool.module.stride == 2


def test_stride_two_skip_and_none_kinds(entry):
    """A skip on a reduction input is a FactorizedReduce (two 1×1 convs): a conv op; none is zero."""
    inline = {"normal": [["none", 0], ["skip_connect", 1]],
              "reduce": [["skip_connect", 0], ["max_pool_3x3", 1]]}
    net = network(build(entry, genotype=inline))
    assert [(e.kind, e.stride) for e in net.cells[0].edges()] == [("zero", 1), ("skip", 1)]
    skip, pool = net.cells[1].edges()
    assert (skip.kind, skip.stride, type(skip.module).__name__) == ("conv", 2, "FactorizedReduce")
    assert (pool.kind, pool.stride) == ("pool", 2)
    with torch.no_grad():
        assert net(torch.rand(2, 1, 8, 8)).shape == (2, 10)


# --- inline and malformed genotypes ----------------------------------------------------------------


def test_inline_genotype_equals_the_named_one(entry):
    inline = {"normal": [list(p) for p in RACL_NORMAL], "reduce": [list(p) for p in RACL_REDUCE],
              "normal_concat": [2, 3, 4, 5]}
    params = entry.make_params({"genotype": inline})
    assert entry.make_params(params.model_dump(mode="json")) == params  # stored params round-trip
    x = torch.rand(2, *CIFAR, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a = build(entry, CIFAR, genotype=inline).eval()(x)
        b = build(entry, CIFAR, genotype="RACL").eval()(x)
    assert torch.equal(a, b)


def test_genotype_names_are_canonicalized(entry):
    assert entry.make_params({"genotype": "pc-darts"}).genotype == "PC_DARTS"
    assert entry.make_params({}).genotype == "DARTS_V2"


GOOD_REDUCE = [["max_pool_3x3", 0], ["max_pool_3x3", 1]]
MALFORMED = [
    ({"normal": [["sep_conv_3x3", 0], ["conv_9x9", 1]], "reduce": GOOD_REDUCE},
     "inline genotype: normal[1][0]: Input should be 'none'"),
    ({"normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 2]], "reduce": GOOD_REDUCE},
     "normal[1] = ('sep_conv_3x3', 2): input 2 is not available to node 2"),
    ({"normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1]],
      "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 2], ["skip_connect", 4]]},
     "reduce[3] = ('skip_connect', 4): input 4 is not available to node 3"),
    ({"normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", -1]], "reduce": GOOD_REDUCE},
     "input -1 is not available"),
    ({"normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ["skip_connect", 0]], "reduce": GOOD_REDUCE},
     "normal has 3 (op, input) pairs"),
    ({"normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1]], "reduce": GOOD_REDUCE,
      "normal_concat": [2, 3]}, "normal_concat = [2, 3]"),
    ({"normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1]]}, "reduce: required key is missing"),
    ("RACL2", "unknown genotype 'RACL2'; known: RACL, DARTS_V1"),
    (7, "expected a genotype name"),
]


@pytest.mark.parametrize(("genotype", "message"), MALFORMED,
                         ids=["unknown-op", "future-input", "reduce-input", "negative-input",
                              "odd-count", "bad-concat", "missing-cell", "unknown-name", "not-a-spec"])
def test_malformed_genotype_is_a_validation_error(entry, genotype, message):
    with pytest.raises(ValidationError) as info:
        entry.make_params({"genotype": genotype})
    (error,) = info.value.errors()
    assert error["loc"] == ("genotype",)
    assert message in str(info.value)


def test_malformed_genotype_is_one_line_for_a_suite(components):
    """Through the engine's own validation: file, key path and the genotype's own location."""
    bad = {"genotype": {"normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 5]], "reduce": GOOD_REDUCE}}
    with pytest.raises(UserError) as info:
        components.validated_params(components.architectures.get("darts"), bad,
                                    Where("suite.toml", ("architectures", 0, "params")))
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("suite.toml: architectures[0].params.genotype: inline genotype: normal[1]")


# --- drop-path and the auxiliary head -------------------------------------------------------------


def test_drop_path_only_in_training(entry):
    model = build(entry, CIFAR, genotype="RACL", drop_path_prob=0.5)
    x = torch.rand(4, *CIFAR, generator=torch.Generator().manual_seed(2))
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x)), "drop-path must be inactive in eval mode"
        model.train()
        torch.manual_seed(0)
        first = model(x)
        second = model(x)
        assert not torch.allclose(first, second), "drop-path should be active in training"
        network(model).drop_path_prob = 0.0  # a schedule may change it between epochs
        assert torch.equal(model(x), model(x))


def test_auxiliary_head_keeps_the_model_contract(entry):
    model = build(entry, CIFAR, genotype="PDARTS", auxiliary=True)
    net = network(model)
    x = torch.rand(2, *CIFAR)
    out = model.train()(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)
    assert net.aux_logits is not None and net.aux_logits.shape == (2, 10)
    with torch.no_grad():
        assert model.eval()(x).shape == (2, 10)
    assert net.aux_logits is None
    digits = build(entry, DIGITS, genotype="PDARTS", auxiliary=True).train()  # 2×2 map at 2/3 depth
    digits(torch.rand(2, *DIGITS))
    assert network(digits).aux_logits.shape == (2, 10)


def test_training_ramps_drop_path_and_trains_the_auxiliary_head(tmp_path):
    """The trainer calls the network's hooks: drop-path rises from 0 (DARTS's schedule) and the
    auxiliary head, which only the added loss reaches, learns."""
    suite = tmp_path / "suite.toml"
    suite.write_text(
        'datasets = [{ name = "synthetic", params = { train_size = 64, test_size = 8 } }]\n'
        'architectures = [{ name = "darts", params = { genotype = "RACL", C = 2, layers = 3, '
        'drop_path_prob = 0.3, auxiliary = true } }]\n'
        'recipes = [{ name = "r", defense = "standard", epochs = 3, batch_size = 32 }]\n')
    components = load_components(autoload=False)
    plan = build_plan(components, load_suite(suite))
    cell = plan.train_cells[0]
    data = Runner(components, Store(tmp_path / "out"), torch.device("cpu"), tmp_path).dataset(
        cell.dataset, plan)
    trainer = Trainer(components, cell, data, torch.device("cpu"))
    net = network(trainer.model)
    head = {k: v.clone() for k, v in net.auxiliary_head.state_dict().items()}
    seen = []
    net.register_forward_pre_hook(lambda module, args: seen.append(module.drop_path_prob))
    trainer.run()
    assert sorted(set(seen)) == pytest.approx([0.0, 0.1, 0.2])  # 0.3 · epoch / 3
    changed = [k for k, v in net.auxiliary_head.state_dict().items() if not torch.equal(v, head[k])]
    assert any(k.endswith("weight") for k in changed), "the auxiliary head got no gradient"


# --- presets ---------------------------------------------------------------------------------------

PRESETS = {"racl": "RACL", "darts-v1": "DARTS_V1", "darts-v2": "DARTS_V2", "pdarts": "PDARTS",
           "pc-darts": "PC_DARTS", "advrush": "ADVRUSH", "nasnet-a-cifar": "NASNET",
           "amoebanet-a-cifar": "AMOEBANET"}


def test_presets(components):
    for name, genotype in PRESETS.items():
        for suffix, (c, layers) in {"": (36, 20), "-digits": (8, 5)}.items():
            preset = components.catalogue.get("architectures", name + suffix)
            if preset is None:
                assert suffix and genotype in {"NASNET", "AMOEBANET"}
                continue
            assert preset.spec.factory == "darts"
            params = components.architectures.get("darts").make_params(dict(preset.spec.params))
            assert (params.genotype, params.C, params.layers) == (genotype, c, layers)
            assert params.drop_path_prob == 0.0 and not params.auxiliary


def test_digits_preset_trains_a_step(components):
    """racl-digits end to end on 8×8×1: a backward step reaches every used parameter."""
    preset = components.catalogue.get("architectures", "racl-digits")
    entry = components.architectures.get("darts")
    torch.manual_seed(0)
    model = entry.factory(entry.make_params(dict(preset.spec.params)), info_for(DIGITS))
    x, y = torch.rand(8, *DIGITS), torch.arange(8) % 10
    nn.functional.cross_entropy(model.train()(x), y).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
