"""Where train cells run: in this process (``Runner.run_cells``), or as Ray tasks.

With Ray each train cell (its training, clean pass, metrics and attacks) is one task with a GPU
request when the run is on CUDA. Workers read the results database but never write it: their
writes come back with the task's result and the driver records them as each task finishes, so
the database keeps one writer. Checkpoints and the per-epoch training state are files the
workers write themselves, into the output folder (one multi-GPU node; several machines would
need shared storage, untested). A killed worker loses no finished training: its state is only
deleted once the driver has recorded the cell, so the next run picks it up.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from harness.cells import Plan, TrainCell
from harness.devices import resolve_device
from harness.errors import UserError
from harness.plan import build_plan
from harness.runner import Runner, RunSummary, describe_error
from harness.session import load_suite_components
from harness.store import Store
from harness.suite import load_suite


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
    record_checkpoint_stat = _deferred("record_checkpoint_stat")
    forget_train_cell = _deferred("forget_train_cell")
    drop_training_state = _deferred("drop_training_state")  # only once the driver has the row


@dataclass(frozen=True)
class CellTask:
    """Everything a worker needs to rebuild the plan and run one train cell (paths as the user
    gave them: the worker starts in ``cwd``)."""

    suite: Path
    plugin_dirs: tuple[Path, ...]
    catalogue_files: tuple[Path, ...]
    blocked: tuple[str, ...]
    output: Path
    data_root: Path
    device: str  # as requested ("auto", "cuda"…): resolved on the worker, on the GPU Ray gave it
    cwd: Path
    run_id: int
    cell_hash: str


def run_cell_task(task: CellTask) -> tuple[list[tuple[str, tuple, dict]], RunSummary]:
    """The worker side: the same ``Runner.run_cell`` as a local run, against a DeferredStore."""
    os.chdir(task.cwd)  # suites name files relative to where the user ran the command
    suite = load_suite(task.suite)
    components = load_suite_components(suite, task.plugin_dirs, task.catalogue_files, task.blocked)
    # Ray exposes the GPU it assigned as device 0: an index the user gave means the driver's GPU
    device = resolve_device(task.device.split(":")[0])
    plan = build_plan(components, suite, device.type)
    cell = next((c for c in plan.train_cells if c.hash == task.cell_hash), None)
    if cell is None:
        raise RuntimeError("the worker planned the suite differently (was it edited during the "
                           "run, do the workers load other plugins, or see other devices?); "
                           "run it again")
    store = DeferredStore(task.output)
    summary = RunSummary(task.run_id)
    Runner(components, store, device, task.data_root).run_cell(plan, cell, summary)
    return store.writes, summary


class RayExecutor:
    """Runs a plan's train cells as Ray tasks on a local Ray instance, or on the cluster at
    ``address`` ("auto": the one this machine belongs to)."""

    def __init__(self, runner: Runner, task: CellTask, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise UserError("--executor ray needs Ray: pip install 'ray>=2.9' (in a checkout: "
                            "pip install -e '.[ray]')") from None
        self.ray, self.runner, self.task = ray, runner, task
        if not ray.is_initialized():
            # workers build the plan themselves: they must see the same plugin settings
            env = {k: v for k, v in os.environ.items() if k.startswith("HARNESS_")}
            try:
                ray.init(address=address or "local", include_dashboard=False,
                         log_to_driver=False, runtime_env={"env_vars": env} if env else None)
            except (ConnectionError, ValueError) as exc:
                raise UserError(f"--ray-address {address}: cannot join the Ray cluster ({exc})"
                                ) from None
        gpus = ray.cluster_resources().get("GPU", 0)
        wants_gpu = task.device.startswith("cuda") or (task.device == "auto" and gpus > 0)
        if wants_gpu and gpus == 0:
            raise UserError(f"device {task.device!r}: the Ray cluster has no GPU; use "
                            "--device cpu or join a cluster with GPUs (--ray-address)")
        self.gpus_per_cell = 1 if wants_gpu else 0

    def run_cells(self, plan: Plan, summary: RunSummary) -> None:
        ray = self.ray
        remote = ray.remote(num_cpus=1, num_gpus=self.gpus_per_cell, max_retries=0)(run_cell_task)
        pending = {remote.remote(replace(self.task, run_id=summary.run_id, cell_hash=cell.hash)):
                   cell for cell in plan.train_cells}
        with tqdm(total=len(pending), desc="cells (ray)", unit="cell", disable=None) as progress:
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                progress.update()
                stop = self._collect(plan, pending.pop(ref), ref, summary)
                if stop is not None:  # the user's mistake: keep what finished, then stop
                    done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
                    for ref in done:
                        self._collect(plan, pending.pop(ref), ref, summary)
                    for other in pending:
                        ray.cancel(other)
                    raise stop

    def _collect(self, plan: Plan, cell: TrainCell, ref: Any, summary: RunSummary
                 ) -> UserError | None:
        """Record one finished task; a UserError it raised is returned for the caller to raise."""
        try:
            writes, cell_summary = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:  # a task's exception, or a lost worker
            cause = getattr(exc, "cause", None) or exc
            if isinstance(cause, UserError):
                return cause
            self.runner.record_lost_cell(plan, cell, describe_error(cause), summary)
            return None
        self._record(writes, cell_summary, summary)
        return None

    def _record(self, writes, cell_summary: RunSummary, summary: RunSummary) -> None:
        store = self.runner.store
        for name, args, kwargs in writes:
            getattr(store, name)(*args, **kwargs)
        summary.computed += cell_summary.computed
        summary.cached += cell_summary.cached
        summary.skipped += cell_summary.skipped
        summary.failures += cell_summary.failures


def cell_task(suite: Path, plugin_dirs, catalogue_files, blocked, output: Path, data_root: Path,
              device: str) -> CellTask:
    """The run-wide part of every task; workers start in the driver's working directory, so
    the paths stay as the user wrote them (and so do the error messages)."""
    return CellTask(suite, tuple(plugin_dirs), tuple(catalogue_files), tuple(blocked), output,
                    data_root, device, Path.cwd(), 0, "")
