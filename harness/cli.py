"""``harness run | validate | list | plugins | report``: the command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from harness.errors import UserError
from harness.kinds import KINDS


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


def _components(plugins_dirs, catalogues, blocked, suite=None):
    from harness.session import load_components, load_suite_components

    components = (load_components(plugins_dirs, catalogues, blocked) if suite is None else
                  load_suite_components(suite, plugins_dirs, catalogues, blocked))
    _warn_unmatched(components.pm.unmatched_blocks())
    return components


def _warn_unmatched(names) -> None:
    for name in names:
        click.echo(f"warning: blocked plugin {name!r} matched no plugin; check the name "
                   "('harness plugins' lists them)", err=True)


def _listing(plugins_dirs, catalogues, blocked) -> dict[str, Any]:
    """What ``list`` and ``plugins`` print: from the index while no plugin, catalogue or
    setting changed (no torch, no plugin imported), else loaded and indexed."""
    from dataclasses import asdict

    from harness import listing

    key = listing.fingerprint(plugins_dirs, catalogues, blocked)
    index = listing.load(key)
    if index is not None:
        _warn_unmatched(index["unmatched_blocks"])
        return index
    components = _components(plugins_dirs, catalogues, blocked)
    index = {"rows": [row for kind in KINDS for row in _list_rows(components, kind)],
             "plugins": [asdict(info) for info in components.pm.infos.values()],
             "unmatched_blocks": components.pm.unmatched_blocks()}
    listing.save(key, index)
    return json.loads(json.dumps(index))  # as the index gives it back: a miss prints the same


def _plan(suite_path: Path, plugins_dirs, catalogues, blocked, device: str | None = None,
          on_device: bool = False):
    """The suite's plan; with ``on_device``, its cells as they run on ``device`` (default: the
    suite's): bf16 and channels_last are on for CUDA, and part of the cells' hashes."""
    from harness.devices import planned_device_type
    from harness.plan import build_plan
    from harness.suite import load_suite

    suite = load_suite(suite_path)
    components = _components(plugins_dirs, catalogues, blocked, suite)
    device_type = planned_device_type(device or suite.suite.device) if on_device else "cpu"
    return components, build_plan(components, suite, device_type)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def cells_summary(plan) -> str:
    return f"{plural(len(plan.train_cells), 'train cell')}, {plural(len(plan.eval_cells), 'eval cell')}"


class HarnessGroup(click.Group):
    """Turns user errors into one line on stderr and exit status 2, with no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=HarnessGroup, epilog="Example: harness run suites/quickstart.toml")
@click.version_option(package_name="robust-harness", prog_name="harness")
def cli() -> None:
    """Adversarially train architectures and evaluate them against many attacks."""


@cli.command()
@click.argument("suite", type=click.Path(path_type=Path))
@plugin_options
def validate(suite: Path, plugins_dirs, catalogues, blocked) -> None:
    """Check SUITE (names, parameters, budgets) without running anything."""
    _, plan = _plan(suite, plugins_dirs, catalogues, blocked)
    click.echo(f"{suite}: ok — {cells_summary(plan)}")


@cli.command()
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
        executor: str, ray_address: str | None, plugins_dirs, catalogues, blocked) -> None:
    """Train and evaluate every cell of SUITE that the store does not have yet."""
    _run_suite(suite, output, device, data_root, dry_run, executor, ray_address, plugins_dirs,
               catalogues, blocked)


def _run_suite(suite: Path, output: Path | None, device: str | None, data_root: Path,
               dry_run: bool, executor: str, ray_address: str | None, plugins_dirs, catalogues,
               blocked) -> None:
    components, plan = _plan(suite, plugins_dirs, catalogues, blocked, device, on_device=True)
    output = output or Path("runs") / plan.suite.name
    if dry_run:
        _print_plan(plan, output)
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
    _print_tables(matrix)
    click.echo(f"\n{summary.computed} cells computed, {summary.cached} reused from the store; "
               f"wrote {', '.join(str(p) for p in [store.db_path, *written])}")
    if not summary.ok:
        skipped = f" ({summary.skipped} eval cells skipped: their training failed)" \
            if summary.skipped else ""
        click.echo(f"\n{len(summary.failures)} cell(s) failed{skipped}:", err=True)
        for failure in summary.failures:
            click.echo(f"  {failure}", err=True)
        sys.exit(1)


@cli.command(name="eval")
@click.argument("model")
@click.option("--dataset", default="digits", show_default=True, help="Dataset name or preset.")
@click.option("--attack", "attacks", multiple=True, required=True,
              help="Attack preset (repeatable), e.g. aa-standard-linf-8.")
@click.option("--weights", default=None, help="Weights file (.pt, .pth, .safetensors).")
@click.option("--sha256", default=None, help="The weights file's sha256, checked.")
@click.option("--url", default=None, help="Download the weights from here (needs --sha256).")
@click.option("--max-examples", type=click.IntRange(min=1), default=None,
              help="First N test examples (default: all).")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--output", type=click.Path(path_type=Path),
              help="Output folder (default: runs/eval-<model>).")
@click.option("--device", default=None, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--data-root", type=click.Path(path_type=Path), default=Path("data"),
              show_default=True)
@plugin_options
def eval_(model: str, dataset: str, attacks: tuple[str, ...], weights: str | None,
          sha256: str | None, url: str | None, max_examples: int | None, batch_size: int,
          output: Path | None, device: str | None, data_root: Path, plugins_dirs, catalogues,
          blocked) -> None:
    """Evaluate MODEL (a preset, a registered architecture or a zoo entry, with --weights)
    against each --attack, without writing a suite: the suite is written for you into the
    output folder, so the run is cached, resumable and reported like any other."""
    name = "eval-" + "".join(c if c.isalnum() or c in "-_." else "-" for c in model)
    output = output or Path("runs") / name
    output.mkdir(parents=True, exist_ok=True)
    suite = output / "eval-suite.toml"
    suite.write_text(eval_suite(name, model, dataset, attacks, weights, sha256, url,
                                max_examples, batch_size), encoding="utf-8")
    _run_suite(suite, output, device, data_root, False, "local", None,
               [Path(p).resolve() for p in plugins_dirs],
               [Path(p).resolve() for p in catalogues], blocked)


def eval_suite(name: str, model: str, dataset: str, attacks: tuple[str, ...],
               weights: str | None, sha256: str | None, url: str | None,
               max_examples: int | None, batch_size: int) -> str:
    """The suite ``harness eval`` runs (weights paths made absolute: it lives elsewhere)."""
    table = {}
    if weights is not None:
        table["path"] = str(Path(weights).resolve())
    if url is not None:
        table["url"] = url
    if sha256 is not None:
        table["sha256"] = sha256
    entry = {"name": model, **({"weights": table} if table else {})}
    lines = [f"name = {json.dumps(name)}", f"datasets = [{json.dumps(dataset)}]",
             f"architectures = [{_toml_table(entry)}]",
             f"attacks = [{', '.join(json.dumps(a) for a in attacks)}]", "",
             "[evaluation]", f"batch_size = {batch_size}"]
    if max_examples is not None:
        lines.append(f"max_examples = {max_examples}")
    return "\n".join(lines) + "\n"


def _toml_table(values: dict[str, Any]) -> str:
    """An inline TOML table of strings and nested tables (what eval_suite writes)."""
    items = [f"{key} = {_toml_table(value) if isinstance(value, dict) else json.dumps(value)}"
             for key, value in values.items()]
    return "{ " + ", ".join(items) + " }"


def _print_tables(matrix) -> None:
    from harness.report import markdown_table, metrics_table

    click.echo(markdown_table(matrix))
    if matrix.metric_columns:
        click.echo("\n" + metrics_table(matrix))
    for (key, column), raised in matrix.flags.items():
        for name, detail in raised.items():
            click.echo(f"⚑ {' / '.join(key)} — {column}: {name} {detail}")


def _print_plan(plan, output: Path) -> None:
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


@cli.command(name="list")
@click.argument("kind", required=False, type=click.Choice(list(KINDS)))
@click.argument("pattern", required=False, default="*")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@plugin_options
def list_(kind: str | None, pattern: str, as_json: bool, plugins_dirs, catalogues,
          blocked) -> None:
    """List registered factories and catalogue presets, with wildcards and provenance."""
    import fnmatch

    rows = [row for row in _listing(plugins_dirs, catalogues, blocked)["rows"]
            if (kind is None or row["kind"] == kind) and fnmatch.fnmatchcase(row["name"], pattern)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for k in [kind] if kind else KINDS:
        found = [r for r in rows if r["kind"] == k]
        if not kind and not found:
            continue
        click.echo(f"{k}:")
        for r in found:
            click.echo(f"  {r['name']:28} {r['type']:8} {r['from']:28} {r['description']}")


def _list_rows(components, kind: str) -> list[dict[str, Any]]:
    rows = []
    if KINDS[kind].hook:
        for entry in components.registries[kind].list():
            rows.append({"kind": kind, "name": entry.name, "type": "factory",
                         "from": f"plugin {entry.plugin}", **_extra(entry)})
    if KINDS[kind].presets:
        for preset in components.catalogue.items(kind):
            spec = preset.spec
            rows.append({"kind": kind, "name": preset.name, "type": "preset",
                         "from": preset.source.name, "description": preset.description,
                         "uses": getattr(spec, "factory", getattr(spec, "defense", None))})
    return rows


def _extra(entry) -> dict[str, Any]:
    summary = entry.summary()
    summary.pop("name")
    summary.pop("plugin")
    return summary


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@plugin_options
def plugins(as_json: bool, plugins_dirs, catalogues, blocked) -> None:
    """List loaded plugins: name, source, version, location and hooks."""
    infos = _listing(plugins_dirs, catalogues, blocked)["plugins"]
    if as_json:
        click.echo(json.dumps(infos, indent=2))
        return
    for info in infos:
        click.echo(f"{info['name']:24} {info['source']:11} {info['version']:8} {info['location']}")
        click.echo(f"{'':24} hooks: {', '.join(info['hooks'])}")


@cli.command()
@click.argument("output", type=click.Path(path_type=Path), default=None, required=False)
@click.option("--run", "run_id", type=int, default=None, help="Run id (default: the latest).")
@click.option("--list", "list_runs", is_flag=True, help="List the runs stored in OUTPUT.")
def report(output: Path | None, run_id: int | None, list_runs: bool) -> None:
    """Re-render report.md, matrix.csv and matrix.png of a run from OUTPUT/results.db."""
    from harness.report import write_report

    store = _open_store(output, "report")
    if list_runs:
        for row in store.runs():
            click.echo(f"{row['id']:4}  {row['suite_name']:20} {row['status']:11} "
                       f"{row['suite_path']}")
        return
    matrix, written = write_report(store, run_id, output)
    _print_tables(matrix)
    click.echo(f"\nwrote {', '.join(str(p) for p in written)}")


def _open_store(output: Path | None, command: str):
    """The store of a finished run's folder; a folder without one is a user mistake."""
    from harness.store import Store

    if output is None or not (output / "results.db").exists():
        raise UserError(f"{output}: no results.db there; give the output folder of a run, "
                        f"e.g. harness {command} runs/quickstart")
    return Store(output)


@cli.command()
@click.argument("output", type=click.Path(path_type=Path))
@click.argument("first")
@click.argument("second")
@click.option("--run", "run_id", type=int, default=None, help="Run id (default: the latest).")
@click.option("--column", "columns", multiple=True,
              help="Compare only this column (repeatable; default: every column).")
def compare(output: Path, first: str, second: str, run_id: int | None,
            columns: tuple[str, ...]) -> None:
    """Compare rows FIRST and SECOND of a run on the same examples: McNemar's exact test and
    paired intervals of the accuracy difference. Name a row 'architecture / recipe' (or any
    part of it only one row has)."""
    from harness.compare import compare_rows, find_row, markdown
    from harness.matrix import build_matrix

    matrix = build_matrix(_open_store(output, "compare"), run_id)
    a, b = find_row(matrix, first), find_row(matrix, second)
    click.echo(markdown(compare_rows(matrix, a, b, list(columns) or None), a, b))


@cli.command()
@click.argument("outputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--run", "run_id", type=int, default=None,
              help="Run id (default: the latest of each folder).")
@click.option("--questions", type=click.Path(path_type=Path), default=None,
              help="A study-questions TOML (suites/pilots/questions.toml): answer each study's "
                   "question from its run instead of listing every correlation.")
@click.option("--markdown", "markdown_path", type=click.Path(path_type=Path), default=None,
              help="Write the Markdown to this file (figures go to a folder beside it named "
                   "after it) instead of printing it.")
def analyze(outputs: tuple[Path, ...], run_id: int | None, questions: Path | None,
            markdown_path: Path | None) -> None:
    """Architecture metrics against robust accuracy for the runs in OUTPUTS: Spearman's ρ per
    training group with intervals, scatter plots (OUTPUT/analysis/), seen vs unseen threats."""
    from harness.matrix import build_matrix
    from harness.report import findings, write_analysis

    runs, texts = [], []
    for output in outputs:
        store = _open_store(output, "analyze")
        matrix = build_matrix(store, run_id)
        found = findings(matrix)
        texts.append(write_analysis(matrix, found, output)[0])
        runs.append((store, matrix, found))
    text = "\n".join(texts)
    if questions is not None:
        from harness.findings import answer_runs

        command = " ".join(["harness analyze", *map(str, outputs), "--questions", str(questions),
                            *(["--markdown", str(markdown_path)] if markdown_path else [])])
        text = answer_runs(questions, runs, markdown_path, command)
    if markdown_path is None:
        click.echo(text)
        return
    markdown_path.parent.mkdir(parents=True, exist_ok=True)
    markdown_path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    click.echo(f"wrote {markdown_path}")


@cli.command()
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
               plugins_dirs, catalogues, blocked) -> None:
    """Run attacks FIRST and SECOND (e.g. pgd20-linf-8 and pgd20-linf-8-art) on the models SUITE
    trained, and report how far apart they are; exit 1 above --tolerance."""
    from harness.crosscheck import crosscheck as run_crosscheck
    from harness.crosscheck import resolve_pair
    from harness.devices import resolve_device
    from harness.store import Store

    components, plan = _plan(suite, plugins_dirs, catalogues, blocked, device, on_device=True)
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


@cli.command()
@click.argument("target")
@plugin_options
def check(target: str, plugins_dirs, catalogues, blocked) -> None:
    """Run the conformance checks on what TARGET provides: a plugin file, a plugin package
    folder, a folder of plugins, or an installed plugin's name. Exit 1 if any check fails."""
    from harness.testing import all_cases, iter_results, load_target

    try:
        components, names = load_target(target)
    except UserError as error:  # a plugin that does not even load fails its check
        click.echo(f"FAIL  {error}")
        sys.exit(1)
    if not names or not (cases := all_cases(components, names)):
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


@cli.command()
def schema() -> None:
    """Print the JSON Schema of suite files (for editor completion and validation)."""
    from harness.suite import Suite

    click.echo(json.dumps(Suite.model_json_schema(), indent=2))


def main() -> None:
    cli(prog_name="harness")
