"""The quickstart's cell hashes and numbers, pinned: a refactor that changes either would make
every stored result stale or different, so it must be a deliberate, visible change here."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest
import torch

from harness.paths import builtin_suites_dir
from harness.plan import build_plan
from harness.session import load_components
from harness.suite import load_suite

#: train cell → (architecture, recipe, its eval cells' hashes).
PINNED = {
    "51240e47d803781d": ("small-cnn-digits", "standard-digits", {
        "026f43771ed5909e", "de3d9b318c6b37d6", "4c90195b8b8dd9db", "4b94b0c4074a3228"}),
    "9a48facb039cc532": ("small-cnn-digits", "pgd-at-linf-0.1-digits", {
        "5de361b78b447889", "b12ac97ac7999704", "295f8283c2a158c0", "99d8906b329461b3"}),
    "eacb6617f248a4c0": ("resnet18-digits", "standard-digits", {
        "57997e9bd9a70977", "540faf157293060d", "0b6b67119c7691da", "a1fd6b28d7522b48"}),
    "af9b69f917a6277a": ("resnet18-digits", "pgd-at-linf-0.1-digits", {
        "e38c7a08fb4b2f43", "3b103038e82dba3d", "960b8f491e9ebadd", "f314887063e87662"}),
}

#: The small CNN's cells → (clean-correct count, {eval cell: robust count}) of 360 test
#: examples on one CPU thread (the test session's setting), per kind of CPU: fp32 kernels sum
#: in an order that depends on the CPU, which moves a count by up to a few examples.
NUMBERS = {
    "GenuineIntel AVX512": {  # a Xeon with AMX
        "51240e47d803781d": (354, {"026f43771ed5909e": 249, "de3d9b318c6b37d6": 239,
                                   "4c90195b8b8dd9db": 15, "4b94b0c4074a3228": 10}),
        "9a48facb039cc532": (358, {"5de361b78b447889": 328, "b12ac97ac7999704": 323,
                                   "295f8283c2a158c0": 125, "99d8906b329461b3": 41}),
    },
    "AuthenticAMD AVX512": {  # an EPYC with AVX512-BF16
        "51240e47d803781d": (353, {"026f43771ed5909e": 253, "de3d9b318c6b37d6": 239,
                                   "4c90195b8b8dd9db": 13, "4b94b0c4074a3228": 12}),
        "9a48facb039cc532": (359, {"5de361b78b447889": 330, "b12ac97ac7999704": 324,
                                   "295f8283c2a158c0": 126, "99d8906b329461b3": 48}),
    },
}
#: On a CPU of another kind, each count must be within this many examples of every pin.
OTHER_CPU_SLACK = 12


def cpu_kind() -> str:
    """The CPU's vendor and the instruction set torch's kernels use: what the numbers follow."""
    vendor = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("vendor_id"):
                vendor = line.split(":", 1)[1].strip()
                break
    return f"{vendor} {torch.backends.cpu.get_cpu_capability()}"


def test_quickstart_cell_hashes_are_pinned():
    plan = build_plan(load_components(autoload=False),
                      load_suite(builtin_suites_dir() / "quickstart.toml"))
    found = {c.hash: (c.architecture.label, c.recipe.label, {e.hash for e in plan.evals_of(c)})
             for c in plan.train_cells}
    assert found == PINNED


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
    measured = {}
    for train_hash in NUMBERS["GenuineIntel AVX512"]:
        accuracy, n = db.execute("SELECT accuracy, n FROM clean_results WHERE train_hash = ?",
                                 (train_hash,)).fetchone()
        measured[train_hash] = (round(accuracy * n), {h: round(a * n) for h, a, n in db.execute(
            "SELECT hash, robust_accuracy, n FROM eval_cells WHERE train_hash = ?",
            (train_hash,))})
    kind = cpu_kind()
    if kind in NUMBERS:
        assert measured == NUMBERS[kind]
        return
    for pinned in NUMBERS.values():  # a CPU not pinned: near every pin, with the same cells
        for train_hash, (clean, evals) in pinned.items():
            got_clean, got = measured[train_hash]
            assert abs(got_clean - clean) <= OTHER_CPU_SLACK, (kind, train_hash)
            assert got.keys() == evals.keys()
            assert all(abs(got[h] - evals[h]) <= OTHER_CPU_SLACK for h in evals), (kind, got)
