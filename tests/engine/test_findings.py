"""From stored outcomes to findings: intervals over seeds, paired comparison, seen/unseen,
metric correlations, the report's files and the analyze/compare commands — on a hand-made run
whose every number is known."""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.analyze import analyze, undertrained, undertrained_note
from harness.compare import compare_rows, find_row
from harness.errors import UserError
from harness.matrix import Matrix, build_matrix
from harness.report import curves_note, write_report
from harness.stats import t_interval
from harness.store import Store
from harness.unseen import seen_unseen

EXAMPLES = 100
SEEDS = [0, 1, 2]
#: PGD-robust examples of architectures a1..a6 (size 1..6) at seed 0: decreasing, a5/a6 swapped
PGD = [80, 72, 64, 56, 40, 48]
ATTACKS = {"pgd": ("linf", 0.1), "pgd2": ("linf", 0.2), "l2": ("l2", 1.0)}


def first(k: int) -> torch.Tensor:
    """Nested outcomes: the first k examples are robust (so a stronger row covers a weaker)."""
    return torch.arange(EXAMPLES) < k


def write_run(root: Path) -> Path:
    """A run of 6 adversarially trained architectures (and 2 standard ones) × 3 seeds."""
    store = Store(root)
    plan: dict = {"suite": "fake", "attack_labels": list(ATTACKS), "train_cells": [],
                  "eval_cells": [], "mode": "per-attack", "max_examples": None,
                  "metrics": [{"label": "size", "hash": "m"}],
                  "attacks": {label: {"norm": n, "eps": e, "black_box": False,
                                      "minimum_norm": False, "curve": label.rstrip("2")}
                              for label, (n, e) in ATTACKS.items()}}
    rows = [(f"a{i + 1}", "at", PGD[i]) for i in range(6)] + [("a1", "std", 30), ("a2", "std", 20)]
    for arch, recipe, pgd in rows:
        for seed in SEEDS:
            cell = f"{arch}-{recipe}-{seed}"
            labels = {"dataset": "digits", "architecture": arch, "recipe": recipe, "seed": seed}
            plan["train_cells"].append({"hash": cell, "labels": labels})
            threat = {"threat": {"norm": "linf", "eps": 0.1}} if recipe == "at" else None
            store.record_train(cell, {"recipe": {"attack": threat}}, labels, status="done")
            store.record_clean(cell, None, first(95))
            robust = {"pgd": first(pgd + seed), "pgd2": first((pgd + seed) // 2),
                      "l2": first((pgd + seed) // 4)}
            for label, outcome in robust.items():
                plan["eval_cells"].append({"hash": f"{cell}-{label}", "train": cell,
                                           "attack": label})
                store.record_eval(f"{cell}-{label}", cell, {}, label, status="done",
                                  mode="per-attack", robust=outcome)
            store.record_metric(cell, "m", "size", status="done",
                                values={"size": float(arch[1:])})
    suite = root / "fake.toml"
    suite.write_text('name = "fake"\n')
    store.finish_run(store.start_run("fake", suite, plan), "done")
    store.close()
    return root


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return write_run(tmp_path_factory.mktemp("findings"))


@pytest.fixture(scope="module")
def matrix(run_dir) -> Matrix:
    return build_matrix(Store(run_dir))


def test_every_number_is_a_mean_with_its_interval_over_seeds(matrix):
    key = ("a1", "at")
    expected = t_interval([0.80, 0.81, 0.82])
    assert matrix.seeds[key] == SEEDS
    assert matrix.interval(key, "pgd") == expected
    row = dict(zip(matrix.header(), next(r for r in matrix.formatted_rows() if r[:2] == ["a1", "at"]),
                   strict=True))
    assert row["pgd"] == expected.text(100) == "81.0 ± 2.5"
    assert row["clean"] == "95.0 ± 0.0" and row["seeds"] == "3"


def test_compare_pairs_seeds_and_examples(matrix):
    a, b = find_row(matrix, "a1 / at"), find_row(matrix, "a2/at")
    pgd = compare_rows(matrix, a, b, ["pgd"])[0]
    # per seed a1 covers a2 plus 8 examples: 24 discordant pairs, all on A's side
    assert (pgd.test.pairs, pgd.test.only_a, pgd.test.only_b) == (300, 24, 0)
    assert pgd.test.p_value == pytest.approx(2 / 2 ** 24)
    assert pgd.test.difference.mean == pytest.approx(0.08)
    assert pgd.over_seeds.low == pytest.approx(0.08) == pgd.over_seeds.high  # same gap each seed
    with pytest.raises(UserError, match="matches several rows"):
        find_row(matrix, "a1")
    with pytest.raises(UserError, match="'a9' is not a row of this run"):
        find_row(matrix, "a9")


def test_seen_and_unseen_per_trained_model(matrix):
    entries = {e.key: e for e in seen_unseen(matrix)}
    assert set(entries) == {(f"a{i}", "at") for i in range(1, 7)}  # standard training has none
    e = entries[("a1", "at")]
    assert (e.seen, e.unseen) == (["pgd"], ["l2"])
    assert e.seen_accuracy == t_interval([0.80, 0.81, 0.82])
    ratio = t_interval([20 / 80, 20 / 81, 20 / 82])  # (80 + s) // 4 = 20 unseen-robust
    assert (e.ratio.mean, e.ratio.low, e.ratio.high) == pytest.approx((ratio.mean, ratio.low,
                                                                       ratio.high))


def test_metric_correlations_per_training_group(matrix):
    pairs = {(p.group, p.metric, p.target): p for p in analyze(matrix, seen_unseen(matrix))}
    pgd = pairs[(("at",), "size", "pgd")].correlation
    # sizes 1..6 against a decreasing robustness with one adjacent swap: ρ = −(1 − 12/210)
    assert pgd.rho == pytest.approx(-(1 - 12 / 210))
    assert pgd.p_value == pytest.approx(12 / 720) and pgd.conclusive()
    assert pairs[(("std",), "size", "pgd")].correlation.n == 2
    assert (("at",), "size", "unseen/seen") in pairs and (("std",), "size", "unseen/seen") not in pairs


def test_report_files_carry_intervals_and_plots(run_dir):
    _, written = write_report(Store(run_dir), None, run_dir)
    names = {p.relative_to(run_dir).as_posix() for p in written}
    assert {"seen_unseen.png", "curves.png", "analysis.md", "analysis.json",
            "analysis/at--size.png"} <= names
    for path in written:
        assert path.stat().st_size > 0, path
    report = (run_dir / "report.md").read_text()
    assert "81.0 ± 2.5" in report and "## Seen and unseen threats" in report
    assert "**-0.94 [" in report  # the conclusive correlation, bold
    row = next(csv.DictReader((run_dir / "matrix.csv").open()))
    assert float(row["pgd low95"]) == pytest.approx(t_interval([0.80, 0.81, 0.82]).low, abs=1e-6)
    exported = json.loads((run_dir / "results.json").read_text())
    assert exported["rows"][0]["interval"]["pgd"]["n"] == 3
    assert exported["rows"][0]["per_seed"]["pgd"] == [0.8, 0.81, 0.82]
    assert exported["seen_unseen"][0]["unseen"] == ["l2"]


def test_curves_start_at_clean_accuracy_and_short_ones_get_a_note():
    matrix = Matrix(1, "s", ["architecture"], ["clean", "pgd@0.1", "pgd@0.2"],
                    curves=[[(0.1, "pgd@0.1"), (0.2, "pgd@0.2")]])
    assert matrix.curve_points(matrix.curves[0])[0] == (0.0, "clean")
    assert "only 2 budgets (0.1, 0.2) besides eps = 0" in curves_note(matrix)


def test_compare_and_analyze_commands(run_dir, run_cli, tmp_path):
    result = run_cli("compare", run_dir, "a1/at", "a2/at", "--column", "pgd")
    assert result.exit_code == 0, result.output
    assert "| pgd | 81.0 ± 2.5 | 73.0 ± 2.5 | +8.0 |" in result.stdout
    for args, message in [(("a1/at", "zz"), "'zz' is not a row"),
                          (("a1/at", "a2/at", "--column", "fgsm"), "no column 'fgsm'")]:
        bad = run_cli("compare", run_dir, *args)
        assert bad.exit_code == 2 and bad.stderr.startswith("error: ") and message in bad.stderr
        assert len(bad.stderr.splitlines()) == 1
    missing = run_cli("analyze", tmp_path / "nothing")
    assert missing.exit_code == 2 and "no results.db there" in missing.stderr
    printed = run_cli("analyze", run_dir)
    assert printed.exit_code == 0 and "## at: 6 architectures, 3 seed(s) each" in printed.stdout


def test_analyze_answers_study_questions(run_dir, run_cli, tmp_path):
    questions = tmp_path / "questions.toml"
    study = """
        [[study]]
        suite = "fake"
        study = "{name}"
        paper = "A. Author, 2024"
        claim = "larger models are {word} robust"
        metric = "size"
        recipe = "at"
        target = "pgd"
        expect = "{sign}"
    """
    questions.write_text(textwrap.dedent(study.format(name="Size", word="less", sign="negative"))
                         + textwrap.dedent(study.format(name="Other", word="more", sign="positive")
                                           .replace('suite = "fake"', 'suite = "other"')))
    out = tmp_path / "docs" / "pilots.md"
    result = run_cli("analyze", run_dir, "--questions", questions, "--markdown", out)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "| Size | ρ(size, pgd) = -0.94 [" in text and "(claimed < 0) | shows up |" in text
    assert "Spearman ρ(size, pgd) = -0.94" in text and "## Not run" in text
    assert (tmp_path / "docs" / "pilots" / "fake.png").stat().st_size > 0
    assert "![fake](pilots/fake.png)" in text
    flipped = questions.read_text().replace('expect = "negative"', 'expect = "positive"')
    questions.write_text(flipped)
    result = run_cli("analyze", run_dir, "--questions", questions)
    assert "(claimed > 0) | does not show up |" in result.stdout
    questions.write_text(flipped.replace('metric = "size"', 'metric = "size"\nfirst = "a1/at"'))
    bad = run_cli("analyze", run_dir, "--questions", questions)
    assert bad.exit_code == 2 and "either metric" in bad.stderr


def test_matrix_without_seed_detail_still_exports(matrix):
    """A hand-built matrix (no per-seed data) renders without intervals."""
    bare = Matrix(1, "s", ["architecture"], ["clean"], rows=[(("m",), [0.5], 1)])
    assert bare.formatted_rows() == [["m", "1", "50.0"]]
    assert np.isclose(matrix.rows[0][1][0], 0.95)


def test_rows_that_did_not_train_are_named():
    rows = [(("cnn", "at"), [0.98], 1), (("mobile", "at"), [0.56], 1), (("vit", "at"), [0.10], 1)]
    matrix = Matrix(1, "s", ["architecture", "recipe"], ["clean"], rows=rows)
    found = undertrained(matrix, [k for k, _, _ in rows])
    assert [k for k, _ in found] == [("mobile", "at"), ("vit", "at")]
    assert undertrained_note(found, 0).startswith(
        "Check before reading: mobile (56.0% clean), vit (10.0% clean) reached under 3/4")
