"""``harness validate`` and ``harness schema``: suite files checked without running anything,
and described for editors.

``validate`` takes several files, so that a shell glob over a folder of suites works; the
study-questions file that sits beside the pilot suites is recognised and checked as what it is
(``harness.questions``). Each file that fails is one error line, and the others are still
checked: exit 2 if any failed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from harness.commands.common import cells_summary, echo_user_error, get_plan, plugin_options, plural
from harness.errors import UserError


@click.command()
@click.argument("suites", nargs=-1, required=True, metavar="SUITE...",
                type=click.Path(path_type=Path))
@plugin_options
def validate(suites: tuple[Path, ...], plugins_dirs: tuple[Path, ...],
             catalogues: tuple[Path, ...], blocked: tuple[str, ...]) -> None:
    """Check each SUITE (names, parameters, budgets) without running anything. A
    study-questions file for 'harness analyze --questions' is checked as one: its studies parse
    and each names a suite of its folder."""
    from harness.questions import check_questions, is_questions_file

    failed = 0
    warned: set[str] = set()  # each file loads its plugins: warn about a block name once
    for suite in suites:
        try:
            if is_questions_file(suite):
                questions = check_questions(suite)
                click.echo(f"{suite}: ok — a questions file for 'harness analyze --questions' "
                           f"({plural(len(questions), 'question')}, each naming a suite beside it)")
            else:
                _, plan = get_plan(suite, plugins_dirs, catalogues, blocked, warned=warned)
                click.echo(f"{suite}: ok — {cells_summary(plan)}")
        except UserError as error:
            echo_user_error(error)
            failed += 1
    if failed:
        sys.exit(2)


@click.command()
def schema() -> None:
    """Print the JSON Schema of suite files (for editor completion and validation)."""
    from harness.suite import Suite

    click.echo(json.dumps(Suite.model_json_schema(), indent=2))
