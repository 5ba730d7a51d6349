"""The pilot studies: the pilots folder validates, every pilot has its question, docs/pilots.md
is the harness's output for all of them, and one pilot runs end to end at a reduced size."""

from __future__ import annotations

from pathlib import Path

from harness.findings import OPPOSITE, SHOWS, UNTOLD
from harness.questions import load_questions
from harness.suite import load_suite

ROOT = Path(__file__).resolve().parents[2]
PILOTS = ROOT / "suites" / "pilots"
QUESTIONS = PILOTS / "questions.toml"
SUITES = sorted(p for p in PILOTS.glob("*.toml") if p != QUESTIONS)


def test_validating_the_pilots_folder_passes_every_file(run_cli):
    """``harness validate suites/pilots/*.toml`` as a shell expands it: every pilot suite is ok,
    and the questions file among them is recognised and checked as one, not failed as a suite."""
    files = sorted(PILOTS.glob("*.toml"))
    result = run_cli("validate", *files)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split(": ok — ")[0] for line in lines] == [str(f) for f in files]
    assert lines[files.index(QUESTIONS)].endswith(
        ": ok — a questions file for 'harness analyze --questions' (5 questions, each naming a "
        "suite beside it)")


def test_every_pilot_has_one_question():
    names = [load_suite(suite).suite.name for suite in SUITES]
    assert sorted(names) == sorted(q.suite for q in load_questions(QUESTIONS))
    studies = {p.stem for p in (ROOT / "suites").glob("*.toml")}
    assert {p.stem for p in SUITES} <= studies  # each pilot scales down a study suite


def test_docs_pilots_is_the_harness_output_for_every_pilot():
    text = (ROOT / "docs" / "pilots.md").read_text(encoding="utf-8")
    assert text.startswith("# Pilot studies")
    assert "Generated from the stored runs by `harness analyze runs/pilots/" in text
    assert "## Not run" not in text
    for q in load_questions(QUESTIONS):
        row = next(line for line in text.splitlines() if line.startswith(f"| {q.study} |"))
        assert row.rstrip(" |").endswith((SHOWS, OPPOSITE, UNTOLD))


def test_a_pilot_runs_end_to_end_at_reduced_size(run_cli, tmp_path):
    """The Sparta pilot with 2 seeds, 1 epoch, width 4 and 48 test examples, then its finding."""
    text = (PILOTS / "sparta.toml").read_text(encoding="utf-8")
    for full, reduced in [
        ("seeds = [0, 1, 2, 3, 4]", "seeds = [0, 1]"),
        ('architectures = ["resnet18-digits", "resnet18-digits-sparta"]',
         'architectures = [{ name = "resnet18-digits", params = { width = 4 } },\n'
         '                 { name = "resnet18-digits-sparta", params = { width = 4 } }]'),
        ('recipes = ["pgd-at-linf-0.1-digits"]',
         'recipes = [{ name = "pgd-at-linf-0.1-digits", epochs = 1 }]'),
        ("[evaluation]\n", "[evaluation]\nmax_examples = 48\n"),
    ]:
        assert full in text
        text = text.replace(full, reduced)
    suite = tmp_path / "sparta.toml"
    suite.write_text(text, encoding="utf-8")
    out = tmp_path / "run"
    result = run_cli("run", suite, "--output", out)
    assert result.exit_code == 0, result.output
    assert "| resnet18-digits-sparta | pgd-at-linf-0.1-digits | 2 |" in result.stdout
    doc = tmp_path / "docs" / "pilots.md"
    result = run_cli("analyze", out, "--questions", QUESTIONS, "--markdown", doc)
    assert result.exit_code == 0, result.output
    written = doc.read_text(encoding="utf-8")
    assert "## 1. Sparta activation" in written and "95% CI over 2 seeds (t)" in written
    assert "McNemar exact p" in written and "## Not run" in written
    assert (tmp_path / "docs" / "pilots" / "pilot-sparta.png").stat().st_size > 0
    assert (out / "analysis.md").exists() and (out / "report.md").exists()
