"""``harness crosscheck``: two implementations of one attack on the models a suite trained,
and how far apart their accuracies are (exit 1 above the tolerance)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from harness.commands.common import get_plan, plugin_options


@click.command()
@click.argument("suite", type=click.Path(path_type=Path))
@click.argument("first")
@click.argument("second")
@click.option("--output", type=click.Path(path_type=Path),
              help="Output folder of the run (default: runs/<suite name>).")
@click.option("--eps", type=float, default=None, help="Budget for both attacks (else their own).")
@click.option("--max-examples", type=click.IntRange(min=1), default=None,
              help="First N test examples (default: the suite's evaluation.max_examples).")
@click.option("--tolerance", type=float, default=2.0, show_default=True,
              help="Largest accepted accuracy gap, in percentage points.")
@click.option("--device", default=None, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--data-root", type=click.Path(path_type=Path), default=Path("data"))
@plugin_options
def crosscheck(suite: Path, first: str, second: str, output: Path | None, eps: float | None,
               max_examples: int | None, tolerance: float, device: str | None, data_root: Path,
               plugins_dirs: tuple[Path, ...], catalogues: tuple[Path, ...],
               blocked: tuple[str, ...]) -> None:
    """Run attacks FIRST and SECOND (e.g. pgd20-linf-8 and pgd20-linf-8-art) on the models SUITE
    trained, and report how far apart they are; exit 1 above --tolerance."""
    from harness.crosscheck import crosscheck as run_crosscheck
    from harness.crosscheck import resolve_pair
    from harness.devices import resolve_device
    from harness.store import Store

    components, plan = get_plan(suite, plugins_dirs, catalogues, blocked, device, on_device=True)
    pair = resolve_pair(components, (first, second), eps)
    store = Store(output or Path("runs") / plan.suite.name)
    chosen = resolve_device(device or plan.settings.device)
    results = run_crosscheck(components, plan, store, pair, chosen, data_root, max_examples)
    click.echo(f"| model | examples | {first} | {second} | gap (pp) | disagreement |")
    click.echo("|---|---:|---:|---:|---:|---:|")
    for r in results:
        mark = " ⚑" if r.gap_points > tolerance else ""
        click.echo(f"| {r.cell} | {r.examples} | {100 * r.accuracy[0]:.1f} | "
                   f"{100 * r.accuracy[1]:.1f} | {r.gap_points:.1f}{mark} | "
                   f"{100 * r.disagreement:.1f}% |")
    over = [r for r in results if r.gap_points > tolerance]
    if over:
        click.echo(f"\n{len(over)} model(s) above the {tolerance:g} pp tolerance", err=True)
        sys.exit(1)
