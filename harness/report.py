"""The matrix as files and text: terminal table, Markdown, HTML, CSV, JSON, plots, and the
findings sections (seen vs unseen threats, metrics against robustness)."""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from harness import analyze, unseen
from harness.analyze import Pair
from harness.figures import write_curves, write_heatmap, write_history, write_scatter, write_seen_unseen
from harness.matrix import Matrix, build_matrix
from harness.stats import Interval
from harness.store import Store
from harness.unseen import SeenUnseen

SEEDS_NOTE = ("With several seeds a number is the mean ± half the 95% t-interval over seeds "
              "(Student t, n = the seeds column: the spread of training, not of the test "
              "sample); one seed gives no interval.")
#: a curve with fewer budgets than this (besides eps = 0) gets a note
CURVE_POINTS = 3


@dataclass
class Findings:
    """What the report derives from the matrix: seen vs unseen threats, metric correlations."""

    seen_unseen: list[SeenUnseen]
    pairs: list[Pair]


def findings(matrix: Matrix) -> Findings:
    entries = unseen.seen_unseen(matrix)
    return Findings(entries, analyze.analyze(matrix, entries))


def _number(interval: Interval | None, mean: float | None) -> str:
    if mean is None:
        return "—"
    if interval is None or not interval.half_width:  # one seed, or no spread (params, FLOPs)
        return f"{mean:.4g}"
    return f"{mean:.4g} ± {interval.half_width:.2g}"


def metric_rows(matrix: Matrix) -> list[list[str]]:
    return [[*key, *(_number(matrix.metric_interval(key, m), v)
                     for m, v in zip(matrix.metric_columns, values, strict=True))]
            for key, values in matrix.metric_rows.items()]


def metrics_table(matrix: Matrix) -> str:
    if not matrix.metric_columns:
        return ""
    header = [*matrix.row_keys, *matrix.metric_columns]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i < len(matrix.row_keys) else "---:"
                            for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in metric_rows(matrix)]
    return "\n".join(lines)


def markdown_table(matrix: Matrix) -> str:
    header = matrix.header()
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i < len(matrix.row_keys) else "---:"
                            for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in matrix.formatted_rows()]
    return "\n".join(lines)


def versions_line(env: dict) -> str:
    """The libraries and plugins that produced the numbers (a plugin loaded from a folder is
    shown with the start of its source digest)."""
    libraries = ", ".join(f"{name} {version}" for name, version in
                          env.get("libraries", {}).items())
    plugins = ", ".join(
        f"{name} {info['version']}" + (f" ({info['source_sha256'][:12]})"
                                       if info.get("source_sha256") else "")
        for name, info in env.get("plugins", {}).items())
    return f"{libraries or 'library versions not recorded'}; plugins: {plugins or 'not recorded'}"


def curves_note(matrix: Matrix) -> str:
    if not matrix.curves:
        return ""
    lines = ["## Robustness curves", "", "Accuracy against eps, from eps = 0 (clean accuracy), "
             "for each attack swept over several budgets: `curves.png`."]
    short = [curve for curve in matrix.curves if sum(eps > 0 for eps, _ in curve) < CURVE_POINTS]
    lines += [f"- {curve[0][1].split('@')[0]}: only {sum(eps > 0 for eps, _ in curve)} budgets "
              f"({', '.join(f'{eps:g}' for eps, _ in curve)}) besides eps = 0 — too few points "
              "to read a curve's shape from; sweep more, e.g. eps = [...]." for curve in short]
    return "\n".join(lines)


def seen_unseen_note(found: Findings, matrix: Matrix) -> str:
    if not found.seen_unseen:
        return ""
    return "\n".join([
        "## Seen and unseen threats", "",
        "Per adversarially trained model: robust accuracy (%) under the attacks of its training "
        "threat (same norm and eps: seen) and under the attacks of other norms (unseen), each the "
        "per-example worst case over its attacks; gap = seen − unseen, ratio = unseen / seen. "
        "Same-norm attacks at other budgets count as neither. Plot: `seen_unseen.png`.", "",
        unseen.markdown(found.seen_unseen, matrix.row_keys)])


def analysis_note(found: Findings, matrix: Matrix) -> str:
    return "\n".join(["## Metrics against robustness", "",
                      analyze.markdown(found.pairs, matrix, "###"), "",
                      "Scatter plots, one per training group and metric: `analysis/*.png`; "
                      "every pair with its points: `analysis.json`."])


def render_markdown(matrix: Matrix, store: Store, found: Findings) -> str:
    run = store.run(matrix.run_id)
    env = json.loads(run["environment_json"])
    how = ("every attack runs on every clean-correct example" if matrix.mode == "per-attack" else
           "worst-case chain: each attack runs only on the examples still robust after the "
           "attacks to its left, so each column is cumulative")
    lines = [
        f"# {matrix.suite}: cross-attack matrix (run {matrix.run_id})", "",
        f"Accuracy in % on the evaluation examples: clean, robust accuracy under each attack "
        f"({how}), and the worst case over all attacks per example. {SEEDS_NOTE} — marks "
        "a missing or failed cell; ⚑ marks a number qualified by a flag listed below.", "",
        markdown_table(matrix), "",
        f"Suite file: `{run['suite_path']}`; status: {run['status']}; harness "
        f"{env.get('harness')}; {versions_line(env)}.",
    ]
    if matrix.median_norms:
        lines += ["", "## Minimum-norm attacks: median perturbation norm of fooled examples", ""]
        lines += [f"- {' / '.join(key)} — {attack}: {norm:.4g}"
                  for (key, attack), norm in matrix.median_norms.items()]
    for section in (curves_note(matrix),
                    matrix.metric_columns and "## Architecture metrics\n\n" + metrics_table(matrix),
                    seen_unseen_note(found, matrix),
                    matrix.metric_columns and analysis_note(found, matrix)):
        if section:
            lines += ["", section]
    if matrix.flags:
        lines += ["", "## Flags (⚑)", ""] + [
            f"- {' / '.join(key)} — {column}: **{name}** {detail}"
            for (key, column), raised in matrix.flags.items() for name, detail in raised.items()]
    if matrix.failures:
        lines += ["", "## Failed cells", ""] + [f"- {f}" for f in matrix.failures]
    return "\n".join(lines) + "\n"


def _bounds(interval: Interval | None) -> list[str]:
    if interval is None or interval.low is None:
        return ["", ""]
    return [f"{interval.low:.6g}", f"{interval.high:.6g}"]


def write_csv(matrix: Matrix, path: Path) -> None:
    """Each column's seed mean, then the bounds of its 95% interval over seeds."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*matrix.row_keys, "seeds", *(
            name for c in matrix.columns for name in (c, f"{c} low95", f"{c} high95"))])
        for key, values, seeds in matrix.rows:
            writer.writerow([*key, seeds, *(
                text for c, v in zip(matrix.columns, values, strict=True)
                for text in ["" if v is None else f"{v:.6f}",
                             *_bounds(matrix.interval(key, c) if v is not None else None)])])


def write_metrics_csv(matrix: Matrix, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*matrix.row_keys, "seeds", *(
            name for m in matrix.metric_columns for name in (m, f"{m} low95", f"{m} high95"))])
        for key, values in matrix.metric_rows.items():
            writer.writerow([*key, len(matrix.seeds.get(key, [])), *(
                text for m, v in zip(matrix.metric_columns, values, strict=True)
                for text in ["" if v is None else f"{v:.6g}",
                             *_bounds(matrix.metric_interval(key, m))])])


def _finite(value: float | None) -> float | None:
    """NaN (a metric undefined for the model) is null in strict JSON."""
    return None if value is None or math.isnan(value) else value


def _interval_json(interval: Interval | None) -> dict | None:
    if interval is None or _finite(interval.mean) is None:
        return None
    return interval.as_json()


def results_json(matrix: Matrix, found: Findings | None = None) -> dict:
    """Everything the report shows, per row, for analysis in other tools (accuracies as 0–1):
    seed means, their 95% intervals over seeds with n, and each seed's value."""
    rows = []
    for key, values, seeds in matrix.rows:
        row = {"key": dict(zip(matrix.row_keys, key, strict=True)), "seeds": seeds,
               "seed_list": matrix.seeds.get(key, []),
               "accuracy": dict(zip(matrix.columns, values, strict=True)),
               "interval": {c: _interval_json(matrix.interval(key, c)) if key in matrix.seeds
                            else None for c in matrix.columns},
               "per_seed": {c: [s[i] for s in matrix.seed_values.get(key, [])]
                            for i, c in enumerate(matrix.columns)},
               "flags": {column: raised for (k, column), raised in matrix.flags.items()
                         if k == key},
               "median_norm": {attack: norm for (k, attack), norm in matrix.median_norms.items()
                               if k == key}}
        if matrix.metric_columns:
            row["metrics"] = {name: _finite(v) for name, v in
                              zip(matrix.metric_columns, matrix.metric_rows.get(key, []),
                                  strict=False)}
            row["metrics_interval"] = {
                m: _interval_json(matrix.metric_interval(key, m)) if key in matrix.seed_metrics
                else None for m in matrix.metric_columns}
        rows.append(row)
    seen = [] if found is None else found.seen_unseen
    return {"run": matrix.run_id, "suite": matrix.suite, "mode": matrix.mode,
            "columns": matrix.columns, "rows": rows,
            "curves": [[{"eps": eps, "column": column} for eps, column in
                        matrix.curve_points(curve)] for curve in matrix.curves],
            "seen_unseen": [{"key": dict(zip(matrix.row_keys, e.key, strict=True)),
                             "threat": {"norm": e.threat[0], "eps": e.threat[1]},
                             "seen": e.seen, "unseen": e.unseen,
                             "seen_accuracy": e.seen_accuracy.as_json(),
                             "unseen_accuracy": e.unseen_accuracy.as_json(),
                             "gap": e.gap.as_json(),
                             "ratio": None if e.ratio is None else e.ratio.as_json()}
                            for e in seen],
            "failures": matrix.failures}


def render_html(matrix: Matrix, images: list[str], found: Findings) -> str:
    """A self-contained page: the matrix (hover a ⚑ for its flags), metrics, findings, plots."""
    from html import escape

    def text(cell: str) -> str:
        bold = cell.startswith("**") and cell.endswith("**")
        return f"<b>{escape(cell[2:-2])}</b>" if bold else escape(cell)

    def table(header: list[str], rows: list[list[str]], titles: list[list[str]] | None = None
              ) -> str:
        head = "".join(f"<th>{escape(h)}</th>" for h in header)
        body = "".join(
            "<tr>" + "".join(f'<td title="{escape(titles[i][j]) if titles else ""}">'
                             f"{text(cell)}</td>" for j, cell in enumerate(row)) + "</tr>"
            for i, row in enumerate(rows))
        return f"<table><tr>{head}</tr>{body}</table>"

    width = len(matrix.row_keys) + 1
    titles = [["" for _ in range(width)] + [
        "; ".join(f"{name}: {detail}" for name, detail in matrix.flags.get((key, c), {}).items())
        for c in matrix.columns] for key, _, _ in matrix.rows]
    parts = [f"<h1>{escape(matrix.suite)}: cross-attack matrix (run {matrix.run_id})</h1>",
             f"<p>Accuracy in %; — a missing or failed cell; ⚑ a flagged number (hover it). "
             f"{escape(SEEDS_NOTE)}</p>", table(matrix.header(), matrix.formatted_rows(), titles)]
    if matrix.metric_columns:
        parts += ["<h2>Architecture metrics</h2>", table(
            [*matrix.row_keys, *matrix.metric_columns], metric_rows(matrix))]
    if found.seen_unseen:
        parts += ["<h2>Seen and unseen threats</h2>",
                  table(*unseen.table(found.seen_unseen, matrix.row_keys))]
    if found.pairs:
        parts += ["<h2>Metrics against robustness</h2>", f"<p>{escape(analyze.METHOD)}</p>"]
        for group in analyze.tables(found.pairs, matrix):
            parts += [f"<h3>{escape(group.title)}</h3>", table(group.header, group.rows),
                      *(f"<p>{escape(note)}</p>" for note in group.notes)]
    if matrix.failures:
        parts += ["<h2>Failed cells</h2><ul>"] + [f"<li>{escape(f)}</li>"
                                                  for f in matrix.failures] + ["</ul>"]
    parts += [f'<p><img src="{escape(name)}" alt="{escape(name)}"></p>' for name in images]
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}img{max-width:100%}")
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{escape(matrix.suite)}"
            f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>\n")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", text).strip("_")


def write_analysis(matrix: Matrix, found: Findings, out_dir: Path) -> tuple[str, list[Path]]:
    """analysis.md, analysis.json and a scatter plot per training group and metric (only the
    pairs where ρ is defined); returns the Markdown and the files written."""
    text = (f"# {matrix.suite}: metrics against robustness (run {matrix.run_id})\n\n"
            + analyze.markdown(found.pairs, matrix, "##") + "\n")
    written = [out_dir / "analysis.md", out_dir / "analysis.json"]
    written[0].write_text(text, encoding="utf-8")
    written[1].write_text(json.dumps([p.as_json() for p in found.pairs], indent=2,
                                     allow_nan=False), encoding="utf-8")
    plots = out_dir / "analysis"
    plots.mkdir(exist_ok=True)
    for stale in plots.glob("*.png"):  # a metric or group the run no longer has
        stale.unlink()
    by_plot: dict[tuple, list[Pair]] = {}
    for pair in found.pairs:
        if pair.correlation.rho is not None:
            by_plot.setdefault((pair.group, pair.metric), []).append(pair)
    for (group, metric), pairs in by_plot.items():
        written.append(plots / f"{_slug('-'.join(group))}--{_slug(metric)}.png")
        write_scatter(pairs, written[-1])
    return text, written


def write_report(store: Store, run_id: int | None, out_dir: Path) -> tuple[Matrix, list[Path]]:
    matrix = build_matrix(store, run_id)
    found = findings(matrix)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "report.md", out_dir / "matrix.csv", out_dir / "matrix.png",
               out_dir / "results.json"]
    written[0].write_text(render_markdown(matrix, store, found), encoding="utf-8")
    write_csv(matrix, written[1])
    write_heatmap(matrix, written[2])
    written[3].write_text(json.dumps(results_json(matrix, found), indent=2, allow_nan=False),
                          encoding="utf-8")
    if matrix.metric_columns:
        written.append(out_dir / "metrics.csv")
        write_metrics_csv(matrix, written[-1])
    if matrix.curves:
        written.append(out_dir / "curves.png")
        write_curves(matrix, written[-1])
    if found.seen_unseen:
        written.append(out_dir / "seen_unseen.png")
        write_seen_unseen(found.seen_unseen, written[-1])
    if write_history(store, matrix.run_id, out_dir / "history.png"):
        written.append(out_dir / "history.png")
    images = [p.name for p in written if p.suffix == ".png"]
    if found.pairs:
        _, analysis_files = write_analysis(matrix, found, out_dir)
        written += analysis_files
        images += [f"analysis/{p.name}" for p in analysis_files if p.suffix == ".png"]
    html = out_dir / "report.html"
    html.write_text(render_html(matrix, images, found), encoding="utf-8")
    return matrix, [*written, html]
