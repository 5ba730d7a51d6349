"""Validity checks end to end: model checks, black-box vs white-box, eps curves, minimum-norm
scoring, and the worst-case chain — each planted through a test plugin."""

from __future__ import annotations

import csv
import sqlite3
import textwrap

import pytest
from click.testing import CliRunner

from harness.cli import cli

PLUGIN = '''
import torch
from torch import nn
from harness import hookimpl, normalized


def weaker_with_eps(params, threat):
    """Breaks every example at small eps and none at large eps: a non-converging attack."""
    def perturb(model, x, y):
        if threat.eps > 0.45:
            return x.clone()
        return (x + threat.eps * torch.sign(torch.randn_like(x))).clamp(0, 1)
    return perturb


def strong_black_box(params, threat):
    """Gradient-free, and stronger than the white-box attack at the same budget."""
    def perturb(model, x, y):
        return (x + threat.eps * torch.sign(torch.randn_like(x))).clamp(0, 1)
    return perturb


def no_op(params, threat):
    return lambda model, x, y: x.clone()


def far_away(params, threat):
    """A minimum-norm attack whose points lie at linf 0.5: beyond the budget, never scored."""
    return lambda model, x, y: (x + 0.5 * torch.sign(torch.randn_like(x))).clamp(0, 1)


class Noisy(nn.Module):
    def __init__(self, info):
        super().__init__()
        self.linear = nn.Linear(64, info.num_classes)

    def forward(self, x):
        return self.linear(x.flatten(1)) + torch.randn(len(x), self.linear.out_features)


class Rounded(nn.Module):
    """Quantizes its input: zero gradients everywhere."""
    def __init__(self, info):
        super().__init__()
        self.linear = nn.Linear(64, info.num_classes)

    def forward(self, x):
        return self.linear(torch.round(x * 4).flatten(1))


@hookimpl
def harness_register_attacks(registry):
    registry.add("weaker-with-eps", weaker_with_eps)
    registry.add("strong-black-box", strong_black_box, black_box=True)
    registry.add("no-op", no_op)
    registry.add("far-away", far_away, minimum_norm=True)


@hookimpl
def harness_register_architectures(registry):
    registry.add("noisy", lambda params, info: normalized(Noisy(info), info))
    registry.add("rounded", lambda params, info: normalized(Rounded(info), info))
'''

BASE = """
plugins = ["plugins"]
datasets = [{ name = "synthetic", params = { train_size = 64, test_size = 32, noise = 0.05 } }]
recipes = [{ name = "quick", defense = "standard", epochs = 3, batch_size = 16, lr = 0.05 }]
"""


@pytest.fixture
def run_suite(tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "planted.py").write_text(PLUGIN)

    def run(text: str):
        suite = tmp_path / "suite.toml"
        suite.write_text(BASE + textwrap.dedent(text))
        out = tmp_path / "out"
        result = CliRunner().invoke(cli, ["run", str(suite), "--output", str(out)])
        assert result.exit_code == 0, result.output
        return result.output, out

    return run


def test_model_checks_flag_randomness_and_zero_gradients(run_suite):
    output, _out = run_suite("""
        architectures = ["noisy", "rounded", { name = "small-cnn", params = { channels = 2 } }]
        attacks = [{ name = "no-op", eps = 0.1 }]
    """)
    assert "⚑ noisy / quick — clean: nondeterministic-model two forward passes" in output
    assert "⚑ rounded / quick — clean: zero-gradients 100.0% of checked examples" in output
    assert "small-cnn / quick — clean" not in output


def test_black_box_beating_white_box_and_rising_accuracy_are_flagged(run_suite):
    output, out = run_suite("""
        architectures = [{ name = "small-cnn", params = { channels = 4 } }]
        attacks = [
            { name = "no-op", eps = 0.4 },
            { name = "strong-black-box", eps = 0.4 },
            { name = "weaker-with-eps", eps = [0.3, 0.5] },
        ]
    """)
    assert "— strong-black-box: black-box-beats-white-box" in output
    assert "— weaker-with-eps@0.5: accuracy-rises-with-eps" in output
    assert (out / "curves.png").stat().st_size > 0
    assert "## Robustness curves" in (out / "report.md").read_text()


def test_minimum_norm_attack_is_scored_at_the_budget(run_suite):
    _output, out = run_suite("""
        architectures = [{ name = "small-cnn", params = { channels = 4 } }]
        attacks = [{ name = "far-away", eps = 0.1 }, { name = "no-op", eps = 0.1 }]
    """)
    row = next(csv.DictReader((out / "matrix.csv").open()))
    assert float(row["far-away"]) == float(row["clean"]) > 0  # nothing within eps, nothing broken
    db = sqlite3.connect(out / "results.db")
    median = db.execute("SELECT median_norm FROM eval_cells WHERE attack_label='far-away'")
    assert median.fetchone()[0] == pytest.approx(0.5, abs=0.01)
    assert "median perturbation norm" in (out / "report.md").read_text()


def test_worst_case_chain_attacks_only_the_survivors(run_suite):
    _output, out = run_suite("""
        architectures = [{ name = "small-cnn", params = { channels = 4 } }]
        attacks = [{ name = "strong-black-box", eps = 0.4 }, { name = "no-op", eps = 0.1 }]
        [evaluation]
        mode = "worst-case"
    """)
    db = sqlite3.connect(out / "results.db")
    rows = dict(db.execute("SELECT attack_label, robust_accuracy FROM eval_cells"))
    assert rows["no-op"] == rows["strong-black-box"] < 1  # cumulative: no-op breaks nothing more
    assert {m for (m,) in db.execute("SELECT mode FROM eval_cells")} == {"worst-case"}
    assert "worst-case chain" in (out / "report.md").read_text()
