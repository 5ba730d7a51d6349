"""``harness validate`` and ``harness schema``: suite files checked without running anything,
and described for editors."""

from __future__ import annotations

import json
from pathlib import Path

import click

from harness.commands.common import cells_summary, get_plan, plugin_options


@click.command()
@click.argument("suite", type=click.Path(path_type=Path))
@plugin_options
def validate(suite: Path, plugins_dirs: tuple[Path, ...], catalogues: tuple[Path, ...],
             blocked: tuple[str, ...]) -> None:
    """Check SUITE (names, parameters, budgets) without running anything."""
    _, plan = get_plan(suite, plugins_dirs, catalogues, blocked)
    click.echo(f"{suite}: ok — {cells_summary(plan)}")


@click.command()
def schema() -> None:
    """Print the JSON Schema of suite files (for editor completion and validation)."""
    from harness.suite import Suite

    click.echo(json.dumps(Suite.model_json_schema(), indent=2))
