"""``harness run``: plan a suite, skip what the store has, train, evaluate and report; with
``--dry-run``, the planned cells and whether the store has each."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from harness.commands.common import cells_summary, get_plan, plugin_options, print_tables

if TYPE_CHECKING:
    from harness.cells import Plan


@click.command()
@click.argument("suite", type=click.Path(path_type=Path))
@click.option("--output", type=click.Path(path_type=Path),
              help="Output folder (default: runs/<suite name>).")
@click.option("--device", default=None, help="auto, cpu, cuda, cuda:N or mps (overrides suite).")
@click.option("--data-root", type=click.Path(path_type=Path), default=Path("data"),
              show_default=True, help="Where downloadable datasets live.")
@click.option("--dry-run", is_flag=True, help="Print the planned cells and stop.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
              show_default=True, help="Run train cells here, one after another, or as Ray tasks "
                                      "(one GPU each on CUDA; needs the 'ray' extra).")
@click.option("--ray-address", default=None,
              help="Join this Ray cluster (e.g. 'auto'); default: start a local one.")
@plugin_options
def run(suite: Path, output: Path | None, device: str | None, data_root: Path, dry_run: bool,
        executor: str, ray_address: str | None, plugins_dirs: tuple[Path, ...],
        catalogues: tuple[Path, ...], blocked: tuple[str, ...]) -> None:
    """Train and evaluate every cell of SUITE that the store does not have yet."""
    run_suite(suite, output, device, data_root, dry_run, executor, ray_address, plugins_dirs,
              catalogues, blocked)


def run_suite(suite: Path, output: Path | None, device: str | None, data_root: Path,
              dry_run: bool, executor: str, ray_address: str | None,
              plugins_dirs: Sequence[Path], catalogues: Sequence[Path],
              blocked: Sequence[str]) -> None:
    """What ``run`` does, also for ``eval`` (which writes the suite first); exits 1 when a cell
    failed and 130 when interrupted."""
    components, plan = get_plan(suite, plugins_dirs, catalogues, blocked, device, on_device=True)
    output = output or Path("runs") / plan.suite.name
    if dry_run:
        print_plan(plan, output)
        return
    from harness.devices import describe, resolve_device
    from harness.report import write_report
    from harness.runner import Runner
    from harness.store import Store

    requested = device or plan.settings.device
    # with Ray, each worker resolves the device on the machine (and GPU) it was given
    chosen = resolve_device(requested if executor == "local" else "cpu")
    where = describe(chosen) if executor == "local" else f"Ray workers ({requested})"
    store = Store(output)
    click.echo(f"{plan.suite.name}: {cells_summary(plan)} on {where} → {output}", err=True)
    runner = Runner(components, store, chosen, data_root)
    run_cells = None
    if executor == "ray":
        from harness.executors import RayExecutor, cell_task

        task = cell_task(suite, plugins_dirs, catalogues, blocked, output, data_root, requested)
        run_cells = RayExecutor(runner, task, ray_address).run_cells
    try:
        summary = runner.execute(plan, run_cells)
    except KeyboardInterrupt:
        click.echo("interrupted: finished cells are saved; run again to resume", err=True)
        sys.exit(130)
    matrix, written = write_report(store, summary.run_id, output)
    print_tables(matrix)
    click.echo(f"\n{summary.computed} cells computed, {summary.cached} reused from the store; "
               f"wrote {', '.join(str(p) for p in [store.db_path, *written])}")
    if not summary.ok:
        skipped = f" ({summary.skipped} eval cells skipped: their training failed)" \
            if summary.skipped else ""
        click.echo(f"\n{len(summary.failures)} cell(s) failed{skipped}:", err=True)
        for failure in summary.failures:
            click.echo(f"  {failure}", err=True)
        sys.exit(1)


def print_plan(plan: Plan, output: Path) -> None:
    """Each train cell and its eval cells, ``done`` when the store at ``output`` has them."""
    from harness.store import Store

    store = Store(output) if (output / "results.db").exists() else None

    def state(kind: str, cell_hash: str) -> str:
        if store is None:
            return "todo"
        row = store.train_cell(cell_hash) if kind == "train" else store.eval_cell(cell_hash)
        return "done" if row is not None and row["status"] == "done" else "todo"

    for cell in plan.train_cells:
        click.echo(f"{cell.hash}  {state('train', cell.hash):4}  {cell.describe()}")
        for e in plan.evals_of(cell):
            click.echo(f"  {e.hash}  {state('eval', e.hash):4}  {e.attack.label} "
                       f"({e.attack.threat.describe()})")
    click.echo(cells_summary(plan))
