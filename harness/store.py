"""The results database (SQLite, WAL) and the checkpoint folder; what makes runs resumable.

Cells are keyed by their content hash. A cell's row is written in one transaction once it has
finished (or failed), after its checkpoint is on disk, so a kill at any moment loses at most
the cell in progress and never leaves a half-written result.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.checkpoints import (
    StorageError,
    digest_path,
    file_problem,
    previous_generation,
    recorded_digest,
    storage_error,
)
from harness.files import file_sha256
from harness.version import __version__

SCHEMA_VERSION = 2

#: Columns added since schema 1, added to an older database when it is opened.
ADDED_COLUMNS = {"train_cells": ("checkpoint_sha256 TEXT", "checkpoint_size INTEGER",
                                 "checkpoint_mtime_ns INTEGER"),
                 "eval_cells": ("seed INTEGER",)}

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    suite_name TEXT NOT NULL,
    suite_path TEXT NOT NULL,
    suite_text TEXT NOT NULL,
    plan_json TEXT NOT NULL,
    environment_json TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS train_cells (
    hash TEXT PRIMARY KEY,
    config_json TEXT NOT NULL,
    labels_json TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    checkpoint TEXT,
    history_json TEXT,
    summary_json TEXT NOT NULL DEFAULT '{}',
    flags_json TEXT NOT NULL DEFAULT '{}',
    seconds REAL,
    finished REAL NOT NULL,
    checkpoint_sha256 TEXT,
    checkpoint_size INTEGER,
    checkpoint_mtime_ns INTEGER
);
CREATE TABLE IF NOT EXISTS clean_results (
    train_hash TEXT NOT NULL,
    max_examples INTEGER NOT NULL,
    n INTEGER NOT NULL,
    accuracy REAL NOT NULL,
    correct BLOB NOT NULL,
    flags_json TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (train_hash, max_examples)
);
CREATE TABLE IF NOT EXISTS eval_cells (
    hash TEXT PRIMARY KEY,
    train_hash TEXT NOT NULL,
    config_json TEXT NOT NULL,
    attack_label TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    mode TEXT NOT NULL,
    n INTEGER,
    robust_accuracy REAL,
    robust BLOB,
    norms BLOB,
    median_norm REAL,
    flags_json TEXT NOT NULL DEFAULT '{}',
    seconds REAL,
    finished REAL NOT NULL,
    seed INTEGER
);
CREATE TABLE IF NOT EXISTS metrics (
    train_hash TEXT NOT NULL,
    metric_hash TEXT NOT NULL,
    label TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    values_json TEXT NOT NULL,
    seconds REAL,
    PRIMARY KEY (train_hash, metric_hash)
);
CREATE TABLE IF NOT EXISTS run_cells (
    run_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    hash TEXT NOT NULL,
    outcome TEXT NOT NULL,
    PRIMARY KEY (run_id, kind, hash)
);
"""

#: max_examples is part of a primary key, where NULL would never match itself.
ALL_EXAMPLES = -1


def pack_bools(values: torch.Tensor) -> bytes:
    return np.asarray(values.cpu().numpy(), dtype=np.uint8).tobytes()


def unpack_bools(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.uint8).astype(bool)


#: The libraries whose versions can change a number (read from package metadata, not imported).
LIBRARIES = ("torch", "torchvision", "torchattacks", "pyautoattack",
             "adversarial-robustness-toolbox", "timm", "robustbench", "numpy", "scipy",
             "scikit-learn", "pydantic", "pluggy", "safetensors")


def environment(plugins: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """What a reader of the results needs to know about where they were computed: machine,
    library versions, and each plugin's version (and source digest for folder plugins)."""
    env: dict[str, Any] = {
        "harness": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
        "platform": platform.platform(), "cuda": torch.cuda.is_available(),
        "threads": torch.get_num_threads(),
        "libraries": {name: version for name in LIBRARIES
                      if (version := _installed_version(name)) is not None},
        "plugins": plugins or {},
    }
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
    return env


def _installed_version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass
class Store:
    """One output folder: ``results.db`` plus ``checkpoints/<train-hash>.safetensors``."""

    root: Path

    #: Seconds to wait for another process's write lock before saying the database is busy.
    lock_timeout: float = 30.0

    def __post_init__(self) -> None:
        self.db_path = self.root / "results.db"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.db_path, timeout=self.lock_timeout,
                                        isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(SCHEMA)
            self._add_new_columns()
            found = self.conn.execute(
                "SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if found is None:
                self.conn.execute("INSERT INTO meta VALUES ('schema_version', ?)",
                                  (SCHEMA_VERSION,))
        except OSError as error:
            raise storage_error(error, self.root) from None
        except sqlite3.Error as error:
            raise self._storage_error(error) from None

    def _add_new_columns(self) -> None:
        for table, columns in ADDED_COLUMNS.items():
            have = {row["name"] for row in self.conn.execute(f"PRAGMA table_info({table})")}
            for column in columns:
                if column.split()[0] not in have:
                    self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")

    def _storage_error(self, error: sqlite3.Error) -> StorageError | sqlite3.Error:
        """A busy, read-only or full database as one line; other errors stay as they are."""
        text = str(error)
        if "locked" in text or "busy" in text:
            return StorageError(f"{self.db_path} is locked by another process (another harness "
                                "run on the same output folder?); wait for it or use --output")
        if "readonly" in text or "read-only" in text or "unable to open" in text:
            return StorageError(f"{self.db_path}: cannot write the results database ({text}); "
                                "check the folder's permissions or use --output")
        if "full" in text or "disk I/O" in text:
            return StorageError(f"{self.db_path}: {text}; free space and run again (finished "
                                "cells are kept)")
        return error

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise self._storage_error(error) from None
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException as error:
            self.conn.execute("ROLLBACK")
            if isinstance(error, sqlite3.OperationalError):
                raise self._storage_error(error) from None
            raise

    def checkpoint_path(self, train_hash: str, which: str = "") -> Path:
        """The evaluated weights (``which=""``), or the ``best``/``last`` ones, or ``state``."""
        suffix = {"": ".safetensors", "state": ".state.pt"}.get(which, f".{which}.safetensors")
        return self.root / "checkpoints" / f"{train_hash}{suffix}"

    def drop_training_state(self, train_hash: str) -> None:
        """Delete a cell's resume state once its finished training is recorded (not before:
        until then the state lets the next run finish the cell without retraining)."""
        state = self.checkpoint_path(train_hash, "state")
        for generation in (state, previous_generation(state)):
            for path in (generation, digest_path(generation)):
                path.unlink(missing_ok=True)

    # --- runs ---

    def start_run(self, suite_name: str, suite_path: Path, plan: dict[str, Any],
                  plugins: dict[str, dict[str, Any]] | None = None) -> int:
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO runs (suite_name, suite_path, suite_text, plan_json, "
                "environment_json, started, status) VALUES (?, ?, ?, ?, ?, ?, 'running')",
                (suite_name, str(suite_path), suite_path.read_text(encoding="utf-8"),
                 json.dumps(plan), json.dumps(environment(plugins)), time.time()))
            return int(cursor.lastrowid)

    def finish_run(self, run_id: int, status: str) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE runs SET finished=?, status=? WHERE id=?",
                         (time.time(), status, run_id))

    def run(self, run_id: int | None = None) -> sqlite3.Row | None:
        if run_id is None:
            return self.conn.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return self.conn.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()

    def runs(self) -> list[sqlite3.Row]:
        return self.conn.execute("SELECT * FROM runs ORDER BY id").fetchall()

    def note_cell(self, run_id: int, kind: str, cell_hash: str, outcome: str) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO run_cells VALUES (?, ?, ?, ?)",
                         (run_id, kind, cell_hash, outcome))

    def run_outcomes(self, run_id: int) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT outcome, COUNT(*) AS n FROM run_cells WHERE run_id=? GROUP BY outcome",
            (run_id,)).fetchall()
        return {row["outcome"]: row["n"] for row in rows}

    # --- train cells ---

    def train_cell(self, cell_hash: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM train_cells WHERE hash=?",
                                 (cell_hash,)).fetchone()

    def finished_train_cell(self, cell_hash: str) -> sqlite3.Row | None:
        """The cell's row if it finished (its checkpoint still to be checked)."""
        row = self.train_cell(cell_hash)
        return row if row is not None and row["status"] == "done" else None

    def checkpoint_problem(self, row: sqlite3.Row, full: bool = False) -> str | None:
        """Why a finished cell's checkpoint cannot be used, or None. Cheap when nothing
        changed: a file of the recorded size and mtime is not re-read unless ``full`` (the
        weights are about to be loaded); otherwise its sha256 is compared with the recorded
        one. A row from before digests were kept adopts the file's."""
        path = Path(row["checkpoint"])
        if not path.is_file():
            return f"checkpoint {path} is missing"
        stat = path.stat()
        if row["checkpoint_sha256"] is None:  # recorded before digests were kept
            problem = file_problem(path) if recorded_digest(path) else None
            if problem is not None:
                return f"checkpoint {path} {problem}"
            self.record_checkpoint_stat(row["hash"], path, None)
            return None
        if stat.st_size != row["checkpoint_size"]:
            return (f"checkpoint {path} is truncated or replaced ({stat.st_size} bytes, "
                    f"recorded {row['checkpoint_size']})")
        if stat.st_mtime_ns == row["checkpoint_mtime_ns"] and not full:
            return None
        problem = file_problem(path, row["checkpoint_sha256"])
        if problem is not None:
            return f"checkpoint {path} {problem}"
        self.record_checkpoint_stat(row["hash"], path, row["checkpoint_sha256"])
        return None

    def record_checkpoint_stat(self, cell_hash: str, path: Path, digest: str | None) -> None:
        stat = path.stat()
        with self.transaction() as conn:
            conn.execute("UPDATE train_cells SET checkpoint_sha256=?, checkpoint_size=?, "
                         "checkpoint_mtime_ns=? WHERE hash=?",
                         (digest or file_sha256(path), stat.st_size, stat.st_mtime_ns,
                          cell_hash))

    def forget_train_cell(self, cell_hash: str) -> None:
        """Drop a cell whose weights are gone or damaged, with every result computed from
        them, so the next step recomputes all of it (a stored number never points at weights
        that no longer exist)."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM train_cells WHERE hash=?", (cell_hash,))
            for table in ("clean_results", "eval_cells", "metrics"):
                conn.execute(f"DELETE FROM {table} WHERE train_hash=?", (cell_hash,))

    def record_train(self, cell_hash: str, config: dict[str, Any], labels: dict[str, Any], *,
                     status: str, error: str | None = None, checkpoint: Path | None = None,
                     checkpoint_sha256: str | None = None,
                     history: list[dict[str, Any]] | None = None,
                     summary: dict[str, float] | None = None, flags: dict[str, str] | None = None,
                     seconds: float = 0.0) -> None:
        stat = checkpoint.stat() if checkpoint is not None else None
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO train_cells (hash, config_json, labels_json, status, "
                "error, checkpoint, history_json, summary_json, flags_json, seconds, finished, "
                "checkpoint_sha256, checkpoint_size, checkpoint_mtime_ns) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (cell_hash, json.dumps(config), json.dumps(labels), status, error,
                 str(checkpoint) if checkpoint else None, json.dumps(history or []),
                 json.dumps(summary or {}), json.dumps(flags or {}), seconds, time.time(),
                 checkpoint_sha256, stat.st_size if stat else None,
                 stat.st_mtime_ns if stat else None))

    # --- clean pass and attacks ---

    def clean_row(self, train_hash: str, max_examples: int | None) -> sqlite3.Row | None:
        return self.conn.execute(
            "SELECT * FROM clean_results WHERE train_hash=? AND max_examples=?",
            (train_hash, ALL_EXAMPLES if max_examples is None else max_examples)).fetchone()

    def clean(self, train_hash: str, max_examples: int | None) -> np.ndarray | None:
        row = self.clean_row(train_hash, max_examples)
        return None if row is None else unpack_bools(row["correct"])

    def record_clean(self, train_hash: str, max_examples: int | None, correct: torch.Tensor,
                     flags: dict[str, str] | None = None) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO clean_results VALUES (?, ?, ?, ?, ?, ?)",
                         (train_hash, ALL_EXAMPLES if max_examples is None else max_examples,
                          len(correct), float(correct.float().mean()), pack_bools(correct),
                          json.dumps(flags or {})))

    def metric(self, train_hash: str, metric_hash: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM metrics WHERE train_hash=? AND metric_hash=?",
                                 (train_hash, metric_hash)).fetchone()

    def record_metric(self, train_hash: str, metric_hash: str, label: str, *, status: str,
                      values: dict[str, float] | None = None, error: str | None = None,
                      seconds: float = 0.0) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (train_hash, metric_hash, label, status, error,
                          json.dumps(values or {}), seconds))

    def eval_cell(self, cell_hash: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM eval_cells WHERE hash=?", (cell_hash,)).fetchone()

    def record_eval(self, cell_hash: str, train_hash: str, config: dict[str, Any],
                    attack_label: str, *, status: str, mode: str, error: str | None = None,
                    robust: torch.Tensor | None = None, norms: torch.Tensor | None = None,
                    median_norm: float | None = None, flags: dict[str, str] | None = None,
                    seconds: float = 0.0, seed: int | None = None) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO eval_cells (hash, train_hash, config_json, attack_label, "
                "status, error, mode, n, robust_accuracy, robust, norms, median_norm, "
                "flags_json, seconds, finished, seed) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (cell_hash, train_hash, json.dumps(config), attack_label, status, error, mode,
                 None if robust is None else len(robust),
                 None if robust is None else float(robust.float().mean()),
                 None if robust is None else pack_bools(robust),
                 None if norms is None else norms.double().numpy().tobytes(), median_norm,
                 json.dumps(flags or {}), seconds, time.time(), seed))
