"""Engine support for architecture metrics and validity flags, end to end through a test plugin."""

from __future__ import annotations

import csv
import sqlite3
import textwrap

from click.testing import CliRunner

from harness.cli import cli

PLUGIN = '''
from harness import hookimpl, raise_flag


def weight_count(params):
    def measure(model, x, y, info):
        return {"weights": sum(p.numel() for p in model.parameters()), "examples": len(x)}
    return measure


def flagging_identity(params, threat):
    def perturb(model, x, y):
        raise_flag("suspicious", "this attack never moves the input")
        return x.clone()
    return perturb


@hookimpl
def harness_register_metrics(registry):
    registry.add("weight-count", weight_count, default=True)


@hookimpl
def harness_register_attacks(registry):
    registry.add("identity", flagging_identity, norms=["linf"])
'''


def test_metrics_and_flags_reach_the_database_and_the_report(tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "probe.py").write_text(PLUGIN)
    suite = tmp_path / "suite.toml"
    suite.write_text(textwrap.dedent("""
        plugins = ["plugins"]
        datasets = [{ name = "synthetic", params = { train_size = 32, test_size = 16 } }]
        architectures = [{ name = "small-cnn", params = { channels = 2, hidden = 8 } }]
        recipes = [{ name = "quick", defense = "standard", epochs = 1, batch_size = 16 }]
        attacks = [{ name = "identity", eps = 0.1 }]
    """))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", str(suite), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "| weight-count.examples | weight-count.weights |" in result.output
    assert "⚑ small-cnn / quick — identity: suspicious this attack never moves the input" in (
        result.output)
    report = (out / "report.md").read_text()
    assert "## Architecture metrics" in report and "**suspicious**" in report
    row = next(csv.DictReader((out / "metrics.csv").open()))
    assert (row["weight-count.examples"], row["weight-count.weights"]) == ("16", "652")
    assert 0 <= float(row["training.final_train_clean"]) <= 1
    db = sqlite3.connect(out / "results.db")
    assert db.execute("SELECT flags_json FROM eval_cells").fetchone()[0] == (
        '{"suspicious": "this attack never moves the input"}')
    assert db.execute("SELECT status FROM metrics WHERE label='weight-count'").fetchall() == [("done",)]
