"""``harness``: the command line. The group and its error handling live here; each command
lives in ``harness.commands`` and is registered below."""

from __future__ import annotations

from typing import Any

import click

from harness.commands.analysis import analyze, compare
from harness.commands.check import check
from harness.commands.common import echo_user_error
from harness.commands.crosscheck import crosscheck
from harness.commands.eval import eval_
from harness.commands.lists import list_, plugins
from harness.commands.report import report
from harness.commands.run import run
from harness.commands.validate import schema, validate
from harness.errors import UserError


class HarnessGroup(click.Group):
    """Turns user errors into one line on stderr and exit status 2, with no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            echo_user_error(exc)
            ctx.exit(2)


@click.group(cls=HarnessGroup, epilog="Example: harness run suites/quickstart.toml")
@click.version_option(package_name="robust-harness", prog_name="harness")
def cli() -> None:
    """Adversarially train architectures and evaluate them against many attacks."""


#: Every command, in the order of the README's table (``--help`` lists them by name).
COMMANDS = (run, validate, list_, plugins, report, compare, analyze, crosscheck, eval_, check,
            schema)
for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="harness")
