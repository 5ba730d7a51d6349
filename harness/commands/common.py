"""What the commands share: the plugin options, loading components and the plan, counts, the
store of a finished run and its tables."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from harness.errors import UserError

if TYPE_CHECKING:
    from harness.cells import Plan
    from harness.components import Components
    from harness.matrix import Matrix
    from harness.store import Store
    from harness.suite import LoadedSuite


def echo_user_error(error: UserError) -> None:
    """A user mistake as the command line reports it: one line on stderr, no traceback."""
    click.echo(f"error: {error}", err=True)


def plugin_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Options every command shares: where plugins and catalogues come from."""
    options = [
        click.option("--plugins-dir", "plugins_dirs", multiple=True,
                     type=click.Path(path_type=Path),
                     help="Extra plugin folder or file (repeatable)."),
        click.option("--catalogue", "catalogues", multiple=True, type=click.Path(path_type=Path),
                     help="Extra catalogue TOML file (repeatable)."),
        click.option("--block-plugin", "blocked", multiple=True, metavar="NAME",
                     help="Do not load this plugin (repeatable; env HARNESS_BLOCK_PLUGINS)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def get_components(plugins_dirs: Iterable[Path], catalogues: Iterable[Path],
                   blocked: Iterable[str], suite: LoadedSuite | None = None,
                   warned: set[str] | None = None) -> Components:
    """The session's components (with the suite's own plugins and catalogues, given one); a
    blocked name that matched nothing is warned about, since it is likely a typo (see
    ``warn_unmatched`` for ``warned``)."""
    from harness.session import load_components, load_suite_components

    components = (load_components(plugins_dirs, catalogues, blocked) if suite is None else
                  load_suite_components(suite, plugins_dirs, catalogues, blocked))
    warn_unmatched(components.pm.unmatched_blocks(), warned)
    return components


def warn_unmatched(names: Iterable[str], warned: set[str] | None = None) -> None:
    """One warning per name; ``warned`` collects the names already warned about, so that a
    command loading the components once per file (``validate a.toml b.toml``) warns once."""
    names = [name for name in names if warned is None or name not in warned]
    for name in names:
        click.echo(f"warning: blocked plugin {name!r} matched no plugin; check the name "
                   "('harness plugins' lists them)", err=True)
    if warned is not None:
        warned.update(names)


def get_plan(suite_path: Path, plugins_dirs: Iterable[Path], catalogues: Iterable[Path],
             blocked: Iterable[str], device: str | None = None, on_device: bool = False,
             warned: set[str] | None = None) -> tuple[Components, Plan]:
    """The suite's plan; with ``on_device``, its cells as they run on ``device`` (default: the
    suite's): bf16 and channels_last are on for CUDA, and part of the cells' hashes."""
    from harness.devices import planned_device_type
    from harness.plan import build_plan
    from harness.suite import load_suite

    suite = load_suite(suite_path)
    components = get_components(plugins_dirs, catalogues, blocked, suite, warned)
    device_type = planned_device_type(device or suite.suite.device) if on_device else "cpu"
    return components, build_plan(components, suite, device_type)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def cells_summary(plan: Plan) -> str:
    return f"{plural(len(plan.train_cells), 'train cell')}, {plural(len(plan.eval_cells), 'eval cell')}"


def open_store(output: Path | None, command: str) -> Store:
    """The store of a finished run's folder; a folder without one is a user mistake."""
    from harness.store import Store

    if output is None or not (output / "results.db").exists():
        raise UserError(f"{output}: no results.db there; give the output folder of a run, "
                        f"e.g. harness {command} runs/quickstart")
    return Store(output)


def print_tables(matrix: Matrix) -> None:
    """The matrix, its metrics and its raised flags, as ``run`` and ``report`` end."""
    from harness.report import markdown_table, metrics_table

    click.echo(markdown_table(matrix))
    if matrix.metric_columns:
        click.echo("\n" + metrics_table(matrix))
    for (key, column), raised in matrix.flags.items():
        for name, detail in raised.items():
            click.echo(f"⚑ {' / '.join(key)} — {column}: {name} {detail}")
