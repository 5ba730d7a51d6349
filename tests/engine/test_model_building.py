"""Engine support for architecture variants and input-size checks, through a test plugin."""

from __future__ import annotations

import torch

from harness import DataInfo
from harness.build import build_model
from harness.errors import UserError
from harness.plan import build_plan
from harness.session import load_components
from harness.suite import load_suite

PLUGIN = '''
import torch
from harness import Params, hookimpl


class Scale(Params):
    factor: float = 2.0


class Scaled(torch.nn.Module):
    def __init__(self, inner, factor):
        super().__init__()
        self.inner, self.factor = inner, factor

    def forward(self, x):
        return self.inner(x) * self.factor


@hookimpl
def harness_register_variants(registry):
    registry.add("scale-logits", lambda params, model, info: Scaled(model, params.factor),
                 params=Scale)


@hookimpl
def harness_register_architectures(registry):
    from harness.nn import normalized

    def big_only(params, shape):
        return "needs inputs of at least 16×16" if shape[-1] < 16 else None

    registry.add("needs-16", lambda params, info: normalized(torch.nn.Flatten(), info),
                 check_input=big_only)
'''

SUITE = """
plugins = ["plugins"]
datasets = ["digits"]
architectures = [{{ name = "small-cnn", variants = [{variants}] }}]
recipes = ["standard-digits"]
"""


def plan_for(tmp_path, variants: str, arch: str | None = None):
    (tmp_path / "plugins").mkdir(exist_ok=True)
    (tmp_path / "plugins" / "scaling.py").write_text(PLUGIN)
    text = SUITE.format(variants=variants)
    if arch:
        text = text.replace('{ name = "small-cnn", variants = [] }', arch)
    path = tmp_path / "suite.toml"
    path.write_text(text)
    components = load_components([tmp_path / "plugins"], blocked=["variants"], autoload=False)
    return components, build_plan(components, load_suite(path))


def test_variants_are_applied_in_order_and_change_the_hash(tmp_path):
    components, plain = plan_for(tmp_path, "")
    _, scaled = plan_for(tmp_path, '{ name = "scale-logits", params = { factor = 3 } }, "scale-logits"')
    assert plain.train_cells[0].hash != scaled.train_cells[0].hash
    arch = scaled.train_cells[0].architecture
    assert [(v.factory, v.params) for v in arch.variants] == [
        ("scale-logits", {"factor": 3.0}), ("scale-logits", {"factor": 2.0})]

    info = DataInfo((1, 8, 8), 10, (0.3,), (0.4,))
    torch.manual_seed(0)
    base = build_model(components, plain.train_cells[0].architecture, info, torch.device("cpu"))
    torch.manual_seed(0)
    model = build_model(components, arch, info, torch.device("cpu"))
    x = torch.rand(2, 1, 8, 8)
    assert torch.allclose(model.eval()(x), 6 * base.eval()(x))


def test_unknown_variant_is_a_located_error(tmp_path):
    try:
        plan_for(tmp_path, '"scale-logit"')
    except UserError as exc:
        assert str(exc) == (f"{tmp_path / 'suite.toml'}: architectures[0].variants[0].name: unknown "
                            "variant 'scale-logit'. Did you mean: scale-logits? "
                            "Run 'harness list variants' (1 available).")
    else:
        raise AssertionError("no error")


def test_check_input_rejects_a_too_small_dataset_at_validation(tmp_path):
    try:
        plan_for(tmp_path, "", arch='"needs-16"')
    except UserError as exc:
        assert str(exc) == (f"{tmp_path / 'suite.toml'}: architectures[0]: needs inputs of at least "
                            "16×16 (dataset 'digits' has inputs of shape (1, 8, 8))")
    else:
        raise AssertionError("no error")
