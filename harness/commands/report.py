"""``harness report``: a stored run's report files rendered again from its database (after an
engine upgrade, or for an earlier run than the latest)."""

from __future__ import annotations

from pathlib import Path

import click

from harness.commands.common import open_store, print_tables


@click.command()
@click.argument("output", type=click.Path(path_type=Path), default=None, required=False)
@click.option("--run", "run_id", type=int, default=None, help="Run id (default: the latest).")
@click.option("--list", "list_runs", is_flag=True, help="List the runs stored in OUTPUT.")
def report(output: Path | None, run_id: int | None, list_runs: bool) -> None:
    """Re-render report.md, matrix.csv and matrix.png of a run from OUTPUT/results.db."""
    from harness.report import write_report

    store = open_store(output, "report")
    if list_runs:
        for row in store.runs():
            click.echo(f"{row['id']:4}  {row['suite_name']:20} {row['status']:11} "
                       f"{row['suite_path']}")
        return
    matrix, written = write_report(store, run_id, output)
    print_tables(matrix)
    click.echo(f"\nwrote {', '.join(str(p) for p in written)}")
