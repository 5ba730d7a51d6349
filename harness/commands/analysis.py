"""``harness compare`` and ``harness analyze``: statistics over stored runs, read from their
databases (nothing is trained or attacked)."""

from __future__ import annotations

from pathlib import Path

import click

from harness.commands.common import open_store


@click.command()
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

    matrix = build_matrix(open_store(output, "compare"), run_id)
    a, b = find_row(matrix, first), find_row(matrix, second)
    click.echo(markdown(compare_rows(matrix, a, b, list(columns) or None), a, b))


@click.command()
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
        store = open_store(output, "analyze")
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
