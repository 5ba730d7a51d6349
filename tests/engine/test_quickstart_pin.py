"""The quickstart's cell hashes and numbers, pinned: a refactor that changes either would make
every stored result stale or different, so it must be a deliberate, visible change here."""

from __future__ import annotations

import sqlite3

import pytest

from harness.paths import builtin_suites_dir
from harness.plan import build_plan
from harness.session import load_components
from harness.suite import load_suite

#: train cell → (architecture, recipe, clean-correct count, {attack: robust count}) of 360
#: test examples, on one CPU thread (the test session's setting).
PINNED = {
    "51240e47d803781d": ("small-cnn-digits", "standard-digits", 354, {
        "026f43771ed5909e": 249, "de3d9b318c6b37d6": 239, "4c90195b8b8dd9db": 15,
        "4b94b0c4074a3228": 10}),
    "9a48facb039cc532": ("small-cnn-digits", "pgd-at-linf-0.1-digits", 358, {
        "5de361b78b447889": 328, "b12ac97ac7999704": 323, "295f8283c2a158c0": 125,
        "99d8906b329461b3": 41}),
    "eacb6617f248a4c0": ("resnet18-digits", "standard-digits", 350, {
        "57997e9bd9a70977": 208, "540faf157293060d": 150, "0b6b67119c7691da": 0,
        "a1fd6b28d7522b48": 1}),
    "af9b69f917a6277a": ("resnet18-digits", "pgd-at-linf-0.1-digits", 355, {
        "e38c7a08fb4b2f43": 327, "3b103038e82dba3d": 313, "960b8f491e9ebadd": 137,
        "f314887063e87662": 34}),
}


def test_quickstart_cell_hashes_are_pinned():
    plan = build_plan(load_components(autoload=False),
                      load_suite(builtin_suites_dir() / "quickstart.toml"))
    found = {c.hash: (c.architecture.label, c.recipe.label, {e.hash for e in plan.evals_of(c)})
             for c in plan.train_cells}
    assert found == {h: (arch, recipe, set(evals)) for h, (arch, recipe, _, evals) in
                     PINNED.items()}


@pytest.mark.slow
def test_quickstart_small_cnn_numbers_are_pinned(run_cli, tmp_path):
    """The small CNN's half of the quickstart (same cells, same hashes), run for real."""
    text = (builtin_suites_dir() / "quickstart.toml").read_text()
    suite = tmp_path / "quickstart.toml"
    suite.write_text(text.replace('architectures = ["small-cnn-digits", "resnet18-digits"]',
                                  'architectures = ["small-cnn-digits"]'))
    result = run_cli("run", suite, "--output", tmp_path / "out")
    assert result.exit_code == 0, result.output
    db = sqlite3.connect(tmp_path / "out" / "results.db")
    for train_hash, (_, _, clean, evals) in PINNED.items():
        if train_hash not in ("51240e47d803781d", "9a48facb039cc532"):
            continue
        accuracy, n = db.execute("SELECT accuracy, n FROM clean_results WHERE train_hash = ?",
                                 (train_hash,)).fetchone()
        assert round(accuracy * n) == clean
        stored = {h: round(a * n) for h, a, n in db.execute(
            "SELECT hash, robust_accuracy, n FROM eval_cells WHERE train_hash = ?", (train_hash,))}
        assert stored == evals
