"""Every suite in suites/ validates, with the cell counts pinned.

The study suites run on CIFAR-10 with a GPU, so the tests only validate them (names, parameters,
budgets, input shapes; no dataset is loaded). A pinned count catches a catalogue change that
silently adds, drops or merges cells of a study's protocol. A new suite needs a line here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUITES = sorted((ROOT / "suites").glob("*.toml"))

#: suite file stem -> (train cells, eval cells)
EXPECTED = {
    "quickstart": (4, 16),
    "generalization": (19, 114),
    "generalization-imagenette": (17, 102),
    "architectural-ingredients": (15, 45),
    "robust-nas": (8, 48),
    "feature-maps": (72, 216),
    "sparta": (16, 48),
}


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


@pytest.mark.parametrize("suite", SUITES, ids=[path.stem for path in SUITES])
def test_suite_validates_with_pinned_cell_counts(suite, run_cli, monkeypatch):
    assert suite.stem in EXPECTED, f"pin the cell counts of suites/{suite.name} in EXPECTED"
    train, evals = EXPECTED[suite.stem]
    monkeypatch.chdir(ROOT)
    result = run_cli("validate", f"suites/{suite.name}")
    assert result.exit_code == 0, result.output
    assert result.stdout == (f"suites/{suite.name}: ok — {plural(train, 'train cell')}, "
                             f"{plural(evals, 'eval cell')}\n")
    assert result.stderr == ""


def test_every_pinned_suite_exists():
    assert sorted(EXPECTED) == sorted(path.stem for path in SUITES)
