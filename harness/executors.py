"""Where train cells run: in this process (``Runner.run_cells``), or as Ray tasks.

With Ray each train cell (its training, clean pass, metrics and attacks) is one task with a GPU
request when the run is on CUDA. Workers read the results database but never write it: their
writes come back with the task's result and the driver records them as each task finishes, so
the database keeps one writer. Checkpoints are files the workers write themselves, so the
output folder (and the data) must be on storage every worker sees: one multi-GPU node, or a
shared filesystem. A killed worker loses only its unfinished cell; its per-epoch training state
is on disk and the next run resumes it.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from harness.errors import UserError
from harness.runner import Runner, RunSummary, describe_error
from harness.store import Store


def _deferred(name: str):
    def write(self: DeferredStore, *args: Any, **kwargs: Any) -> None:
        self.writes.append((name, args, kwargs))

    write.__name__ = name
    return write


class DeferredStore(Store):
    """A worker's view of the output folder: the database read-only, every write kept for the
    driver to replay (``writes``), checkpoint paths as the driver's."""

    def __post_init__(self) -> None:
        self.db_path = self.root / "results.db"
        self.conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)
        self.conn.row_factory = sqlite3.Row
        self.writes: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    record_train = _deferred("record_train")
    record_clean = _deferred("record_clean")
    record_metric = _deferred("record_metric")
    record_eval = _deferred("record_eval")
    note_cell = _deferred("note_cell")


@dataclass(frozen=True)
class CellTask:
    """Everything a worker needs to rebuild the plan and run one train cell (absolute paths)."""

    suite: Path
    plugin_dirs: tuple[Path, ...]
    catalogue_files: tuple[Path, ...]
    blocked: tuple[str, ...]
    output: Path
    data_root: Path
    device_type: str
    cwd: Path
    run_id: int
    cell_hash: str


def run_cell_task(task: CellTask) -> tuple[list[tuple[str, tuple, dict]], RunSummary]:
    """The worker side: the same ``Runner.run_cell`` as a local run, against a DeferredStore."""
    from harness.components import load_suite_components
    from harness.devices import resolve_device
    from harness.plan import build_plan
    from harness.suite import load_suite

    os.chdir(task.cwd)  # suites name files relative to where the user ran the command
    suite = load_suite(task.suite)
    components = load_suite_components(suite, task.plugin_dirs, task.catalogue_files, task.blocked)
    plan = build_plan(components, suite)
    cell = next(c for c in plan.train_cells if c.hash == task.cell_hash)
    store = DeferredStore(task.output)
    summary = RunSummary(task.run_id)
    Runner(components, store, resolve_device(task.device_type), task.data_root).run_cell(
        plan, cell, summary)
    return store.writes, summary


class RayExecutor:
    """Runs a plan's train cells as Ray tasks; ``address`` joins a running cluster (else local)."""

    def __init__(self, runner: Runner, task: CellTask, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise UserError("--executor ray needs Ray: pip install 'robust-harness[ray]'") from None
        self.ray, self.runner, self.task, self.address = ray, runner, task, address

    def run_cells(self, plan, summary: RunSummary) -> None:
        ray = self.ray
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
        gpus = 1 if self.task.device_type == "cuda" else 0
        remote = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=0)(run_cell_task)
        pending = {remote.remote(replace(self.task, run_id=summary.run_id, cell_hash=cell.hash)):
                   cell for cell in plan.train_cells}
        with tqdm(total=len(pending), desc="cells (ray)", unit="cell", disable=None) as progress:
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                cell = pending.pop(ref)
                progress.update()
                try:
                    writes, cell_summary = ray.get(ref)
                except ray.exceptions.RayError as exc:  # a task's exception, or a lost worker
                    cause = getattr(exc, "cause", None) or exc
                    if isinstance(cause, UserError):  # the user's mistake: stop, as locally
                        for other in pending:
                            ray.cancel(other)
                        raise cause from None
                    summary.failures.append(f"{cell.describe()}: {describe_error(cause)}")
                    continue
                self._record(writes, cell_summary, summary)

    def _record(self, writes, cell_summary: RunSummary, summary: RunSummary) -> None:
        store = self.runner.store
        for name, args, kwargs in writes:
            getattr(store, name)(*args, **kwargs)
        summary.computed += cell_summary.computed
        summary.cached += cell_summary.cached
        summary.skipped += cell_summary.skipped
        summary.failures += cell_summary.failures


def cell_task(suite: Path, plugin_dirs, catalogue_files, blocked, output: Path, data_root: Path,
              device: torch.device) -> CellTask:
    """The run-wide part of every task (paths made absolute: workers start elsewhere)."""
    return CellTask(suite.resolve(), tuple(Path(p).resolve() for p in plugin_dirs),
                    tuple(Path(p).resolve() for p in catalogue_files), tuple(blocked),
                    output.resolve(), data_root.resolve(), device.type, Path.cwd(), 0, "")
