"""``harness check``: the plugin conformance checks (``harness.testing``) run on what a plugin
file, folder or installed plugin registers, for plugin authors without a pytest setup."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from harness.commands.common import plugin_options, plural, warn_unmatched
from harness.errors import UserError


@click.command()
@click.argument("target")
@plugin_options
def check(target: str, plugins_dirs: tuple[Path, ...], catalogues: tuple[Path, ...],
          blocked: tuple[str, ...]) -> None:
    """Run the conformance checks on what TARGET provides: a plugin file, a plugin package
    folder, a folder of plugins, or an installed plugin's name; the plugins of each
    --plugins-dir and the recipes of each --catalogue are checked with it, and a
    --block-plugin plugin is not loaded. Exit 1 if any check fails."""
    from harness.testing import all_cases, iter_results, load_target

    try:
        components, names = load_target(target, None, plugins_dirs, catalogues, blocked)
    except UserError as error:  # a plugin that does not even load fails its check
        click.echo(f"FAIL  {error}")
        sys.exit(1)
    warn_unmatched(components.pm.unmatched_blocks())
    if not (cases := all_cases(components, names)):
        raise UserError(f"{target}: provides no component to check (no harness_register_* "
                        "hook registered anything)")
    counts = {"ok": 0, "fail": 0, "skip": 0}
    for case, outcome, detail in iter_results(cases):
        counts[outcome] += 1
        click.echo(f"{outcome.upper():5} {case}" + (f": {detail}" if detail else ""))
    click.echo(f"\n{plural(len(cases), 'check')}: {counts['ok']} ok, {counts['fail']} failed, "
               f"{counts['skip']} skipped")
    if counts["fail"]:
        sys.exit(1)
