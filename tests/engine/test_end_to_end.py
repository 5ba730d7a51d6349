"""A tiny suite end to end through the CLI: train, attack, report, then reuse everything."""

from __future__ import annotations

import csv
import json
import sqlite3
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli

SUITE = """
name = "tiny"
seeds = [0]
datasets = [{ name = "digits" }]
architectures = [
    { name = "small-cnn", params = { channels = 4, hidden = 16 } },
    { name = "resnet18", params = { width = 4 } },
]
attacks = [
    "fgsm-linf-0.1",
    { name = "pgd", eps = 0.1, params = { steps = 3 } },
    { name = "pgdl2", eps = 1.0, params = { steps = 3 } },
]

[evaluation]
max_examples = 64

[[recipes]]
name = "standard-digits"
epochs = 2

[[recipes]]
name = "pgd-at-linf-0.1-digits"
epochs = 2
attack = { name = "pgd", eps = 0.1, params = { steps = 2 } }
"""


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    suite = root / "tiny.toml"
    suite.write_text(SUITE)
    out = root / "out"
    result = CliRunner().invoke(cli, ["run", str(suite), "--output", str(out)])
    return suite, out, result


def test_run_prints_the_matrix_and_writes_files(finished_run):
    _, out, result = finished_run
    assert result.exit_code == 0, result.output
    header = "| architecture | recipe | seeds | clean | fgsm-linf-0.1 | pgd | pgdl2 | worst case |"
    assert header in result.output
    for name in ("results.db", "report.md", "matrix.csv", "matrix.png"):
        assert (out / name).stat().st_size > 0
    assert len(list((out / "checkpoints").glob("*.safetensors"))) == 4
    rows = list(csv.DictReader((out / "matrix.csv").open()))
    assert [(r["architecture"], r["recipe"]) for r in rows] == [
        ("small-cnn", "standard-digits"), ("small-cnn", "pgd-at-linf-0.1-digits"),
        ("resnet18", "standard-digits"), ("resnet18", "pgd-at-linf-0.1-digits")]
    for r in rows:
        clean, worst = float(r["clean"]), float(r["worst case"])
        attacks = [float(r[a]) for a in ("fgsm-linf-0.1", "pgd", "pgdl2")]
        assert 0 <= worst <= min(attacks) <= max(attacks) <= clean <= 1


def test_json_and_html_exports_carry_the_matrix(finished_run):
    _, out, _ = finished_run
    exported = json.loads((out / "results.json").read_text())
    csv_rows = list(csv.DictReader((out / "matrix.csv").open()))
    assert exported["columns"] == ["clean", "fgsm-linf-0.1", "pgd", "pgdl2", "worst case"]
    assert [row["key"] for row in exported["rows"]] == [
        {"architecture": r["architecture"], "recipe": r["recipe"]} for r in csv_rows]
    for row, r in zip(exported["rows"], csv_rows, strict=True):
        assert all(abs(row["accuracy"][c] - float(r[c])) < 1e-6 for c in exported["columns"])
        assert {"params", "flops"} <= {name.split(".")[0] for name in row["metrics"]}
    html = (out / "report.html").read_text()
    assert html.count("<tr>") >= 5 and '<img src="matrix.png"' in html


def test_worst_case_is_the_per_example_minimum(finished_run):
    _, out, _ = finished_run
    db = sqlite3.connect(out / "results.db")
    by_train: dict[str, list[bytes]] = {}
    for train_hash, robust in db.execute("SELECT train_hash, robust FROM eval_cells"):
        by_train.setdefault(train_hash, []).append(robust)
    assert len(by_train) == 4 and all(len(v) == 3 for v in by_train.values())
    rows = list(csv.DictReader((out / "matrix.csv").open()))
    worst = sorted(float(r["worst case"]) for r in rows)
    expected = sorted(
        sum(all(blob[i] for blob in blobs) for i in range(64)) / 64 for blobs in by_train.values())
    assert worst == pytest.approx(expected)


def test_second_run_reuses_every_cell(finished_run):
    suite, out, _ = finished_run
    db = sqlite3.connect(out / "results.db")
    before = db.execute("SELECT hash, finished FROM eval_cells ORDER BY hash").fetchall()
    result = CliRunner().invoke(cli, ["run", str(suite), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "0 cells computed, 16 reused from the store" in result.output
    assert db.execute("SELECT hash, finished FROM eval_cells ORDER BY hash").fetchall() == before
    assert db.execute("SELECT COUNT(*) FROM train_cells").fetchone()[0] == 4


def test_report_rerenders_from_the_database(finished_run):
    _, out, run_result = finished_run
    (out / "report.md").unlink()
    result = CliRunner().invoke(cli, ["report", str(out), "--run", "1"])
    assert result.exit_code == 0, result.output
    table = run_result.output.split("\n\n")[0].strip().splitlines()[-4:]
    for line in table:
        assert line in (out / "report.md").read_text()


FAULTY_PLUGIN = '''
import torch
from harness import hookimpl

def overshoot(params, threat):
    return lambda model, x, y: (x + 2 * threat.eps).clamp(0, 1)

class Diverging:
    def loss(self, model, x, y):
        return model(x).sum() * float("nan")

@hookimpl
def harness_register_attacks(registry):
    registry.add("overshoot", overshoot, norms=["linf"])

@hookimpl
def harness_register_defenses(registry):
    registry.add("diverging", lambda params, attack: Diverging())
'''


def test_failing_cells_are_recorded_and_the_run_goes_on(tmp_path: Path):
    (tmp_path / "faulty").mkdir()
    (tmp_path / "faulty" / "faulty.py").write_text(FAULTY_PLUGIN)
    suite = tmp_path / "faulty.toml"
    suite.write_text(textwrap.dedent("""
        plugins = ["faulty"]
        datasets = [{ name = "synthetic", params = { train_size = 64, test_size = 32 } }]
        architectures = [{ name = "small-cnn", params = { channels = 2, hidden = 8 } }]
        recipes = [{ name = "ok", defense = "standard", epochs = 1, batch_size = 32 },
                   { name = "nan", defense = "diverging", epochs = 1 }]
        attacks = [{ name = "overshoot", eps = 0.1 }, { name = "fgsm", eps = 0.1 }]
    """))
    result = CliRunner().invoke(cli, ["run", str(suite), "--output", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "2 cell(s) failed (2 eval cells skipped: their training failed)" in result.output
    assert "attack exceeded its budget (linf eps=0.1)" in result.output
    assert "TrainingDiverged: loss is nan at epoch 1" in result.output
    db = sqlite3.connect(tmp_path / "out" / "results.db")
    statuses = dict(db.execute("SELECT attack_label, status FROM eval_cells"))
    assert statuses == {"overshoot": "failed", "fgsm": "done"}
    assert db.execute("SELECT status FROM runs").fetchone()[0] == "failed"


def test_crosscheck_reports_the_gap_between_two_attacks(finished_run):
    suite, out, _ = finished_run
    same = CliRunner().invoke(cli, ["crosscheck", str(suite), "pgd20-linf-0.1", "pgd20-linf-0.1",
                                    "--output", str(out), "--max-examples", "32"])
    assert same.exit_code == 0, same.output
    lines = [line for line in same.output.splitlines() if line.startswith("| digits")]
    assert len(lines) == 4 and all(line.endswith("| 0.0 | 0.0% |") for line in lines)
    weak = CliRunner().invoke(cli, ["crosscheck", str(suite), "pgd20-linf-0.1", "fgsm",
                                    "--eps", "0.1", "--output", str(out), "--max-examples", "32",
                                    "--tolerance", "0"])
    assert weak.exit_code == 1
    assert "model(s) above the 0 pp tolerance" in weak.output


def test_crosscheck_defaults_to_the_suites_examples_and_seeds_like_the_run(finished_run):
    """An attack of the suite crosschecked against itself gives the matrix's own number."""
    suite, out, _ = finished_run
    result = CliRunner().invoke(cli, ["crosscheck", str(suite), "fgsm-linf-0.1",
                                      "fgsm-linf-0.1", "--output", str(out)])
    assert result.exit_code == 0, result.output
    rows = [line.split(" | ") for line in result.output.splitlines() if line.startswith("| digits")]
    assert {row[1] for row in rows} == {"64"}  # the suite's evaluation.max_examples
    with sqlite3.connect(out / "results.db") as db:
        matrix = {round(100 * a, 1) for (a,) in db.execute(
            "SELECT robust_accuracy FROM eval_cells WHERE attack_label = 'fgsm-linf-0.1'")}
    assert {float(row[2]) for row in rows} == matrix


def test_crosscheck_needs_a_finished_run(tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text(SUITE)
    result = CliRunner().invoke(cli, ["crosscheck", str(suite), "fgsm-linf-0.1", "pgd", "--eps",
                                      "0.1", "--output", str(tmp_path / "empty")])
    assert result.exit_code == 2
    assert f"{suite}: no trained model in {tmp_path / 'empty'}; run 'harness run" in result.output


def test_json_export_is_strict_json_when_a_metric_is_undefined():
    """A token model has no feature map (NaN): results.json must still parse everywhere."""
    from harness.matrix import Matrix
    from harness.report import results_json

    matrix = Matrix(1, "s", ["architecture"], ["clean"], rows=[(("vit",), [0.5], 1)],
                    metric_columns=["feature-map.height"],
                    metric_rows={("vit",): [float("nan")]})
    text = json.dumps(results_json(matrix), allow_nan=False)
    assert json.loads(text)["rows"][0]["metrics"] == {"feature-map.height": None}
