"""SIGKILL a run mid-way, run it again: finished cells are kept and nothing is computed twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

SUITE = """
seeds = [0, 1, 2, 3, 4, 5]
datasets = ["digits"]
architectures = [{ name = "small-cnn", params = { channels = 8, hidden = 32 } }]
recipes = [{ name = "standard-digits", epochs = 4 }]
attacks = [{ name = "pgd", eps = 0.1, params = { steps = 5 } }]
"""


def finished_cells(db_path: Path) -> dict[str, float]:
    if not db_path.exists():
        return {}
    try:
        with sqlite3.connect(db_path, timeout=5) as db:
            rows = db.execute(
                "SELECT hash, finished FROM eval_cells WHERE status='done' UNION ALL "
                "SELECT hash, finished FROM train_cells WHERE status='done'").fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return {}
    return dict(rows)


def harness_run(suite: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(suite), "--output", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_killed_run_resumes_without_losing_or_repeating_cells(tmp_path: Path):
    suite = tmp_path / "resume.toml"
    suite.write_text(SUITE)
    out = tmp_path / "out"
    process = harness_run(suite, out)
    deadline = time.monotonic() + 120
    while len(finished_cells(out / "results.db")) < 3 and time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = finished_cells(out / "results.db")
    assert 3 <= len(before) < 12, "the kill should land mid-run"

    process = harness_run(suite, out)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    after = finished_cells(out / "results.db")
    assert len(after) == 12
    assert {h: after[h] for h in before} == before, "finished cells must not be recomputed"
    with sqlite3.connect(out / "results.db") as db:
        outcomes = dict(db.execute(
            "SELECT outcome, COUNT(*) FROM run_cells WHERE run_id=2 GROUP BY outcome"))
        assert db.execute("SELECT COUNT(*) FROM eval_cells").fetchone()[0] == 6
        assert db.execute("SELECT status FROM runs ORDER BY id").fetchall() == [
            ("running",), ("done",)]
    assert outcomes["cached"] >= len(before) - 1  # a train cell with a pending eval is reloaded
    assert outcomes["computed"] == 12 - outcomes["cached"]
