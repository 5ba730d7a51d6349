"""The matrix as files and text: terminal table, Markdown, HTML, CSV, JSON and PNG plots."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from harness.matrix import Matrix, build_matrix
from harness.store import Store


def metrics_table(matrix: Matrix) -> str:
    if not matrix.metric_columns:
        return ""
    header = [*matrix.row_keys, *matrix.metric_columns]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i < len(matrix.row_keys) else "---:"
                            for i in range(len(header))) + "|"]
    for key, values in matrix.metric_rows.items():
        lines.append("| " + " | ".join([*key, *("—" if v is None else f"{v:.4g}" for v in values)])
                     + " |")
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


def render_markdown(matrix: Matrix, store: Store) -> str:
    run = store.run(matrix.run_id)
    env = json.loads(run["environment_json"])
    how = ("every attack runs on every clean-correct example" if matrix.mode == "per-attack" else
           "worst-case chain: each attack runs only on the examples still robust after the "
           "attacks to its left, so each column is cumulative")
    lines = [
        f"# {matrix.suite}: cross-attack matrix (run {matrix.run_id})", "",
        f"Accuracy in % on the evaluation examples: clean, robust accuracy under each attack "
        f"({how}), and the worst case over all attacks per example. Seeds are averaged; — marks "
        "a missing or failed cell; ⚑ marks a number qualified by a flag listed below.", "",
        markdown_table(matrix), "",
        f"Suite file: `{run['suite_path']}`; status: {run['status']}; harness "
        f"{env.get('harness')}; {versions_line(env)}.",
    ]
    if matrix.median_norms:
        lines += ["", "## Minimum-norm attacks: median perturbation norm of fooled examples", ""]
        lines += [f"- {' / '.join(key)} — {attack}: {norm:.4g}"
                  for (key, attack), norm in matrix.median_norms.items()]
    if (out := curves_note(matrix)):
        lines += ["", out]
    if matrix.metric_columns:
        lines += ["", "## Architecture metrics", "", metrics_table(matrix)]
    if matrix.flags:
        lines += ["", "## Flags (⚑)", ""] + [
            f"- {' / '.join(key)} — {column}: **{name}** {detail}"
            for (key, column), raised in matrix.flags.items() for name, detail in raised.items()]
    if matrix.failures:
        lines += ["", "## Failed cells", ""] + [f"- {f}" for f in matrix.failures]
    return "\n".join(lines) + "\n"


def write_csv(matrix: Matrix, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(matrix.header())
        for key, values, seeds in matrix.rows:
            writer.writerow([*key, seeds, *("" if v is None else f"{v:.6f}" for v in values)])


def curves_note(matrix: Matrix) -> str:
    if not matrix.curves:
        return ""
    return ("## Robustness curves\n\nAccuracy against eps for each attack swept over several "
            "budgets: `curves.png`.")


def write_curves(matrix: Matrix, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(matrix.curves), figsize=(5 * len(matrix.curves), 3.8),
                             squeeze=False)
    for ax, points in zip(axes[0], matrix.curves, strict=True):
        for key, values, _ in matrix.rows:
            acc = dict(zip(matrix.columns, values, strict=True))
            xs = [eps for eps, label in points if acc.get(label) is not None]
            ys = [100 * acc[label] for _, label in points if acc.get(label) is not None]
            ax.plot(xs, ys, marker="o", label=" / ".join(key))
        ax.set_xlabel("eps")
        ax.set_ylabel("robust accuracy (%)")
        ax.set_ylim(0, 100)
        ax.set_title(points[0][1].split("@")[0])
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_history(store: Store, run_id: int | None, path: Path) -> bool:
    """Per-epoch loss and probe accuracies of every train cell of the run; False if none."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plan = json.loads(store.run(run_id)["plan_json"])
    histories = []
    for cell in plan["train_cells"]:
        row = store.train_cell(cell["hash"])
        if row is not None and row["status"] == "done" and json.loads(row["history_json"]):
            label = " / ".join(str(v) for v in cell["labels"].values())
            histories.append((label, json.loads(row["history_json"])))
    if not histories:
        return False
    keys = [k for k in ("loss", "train_clean", "train_robust", "val_clean", "val_robust")
            if any(k in h[0] for _, h in histories)]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.5), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for label, history in histories:
            points = [(r["epoch"], r[key]) for r in history if key in r]
            ax.plot(*zip(*points, strict=True), marker=".", label=label)
        ax.set_title(key.replace("_", " "))
        ax.set_xlabel("epoch")
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_metrics_csv(matrix: Matrix, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*matrix.row_keys, *matrix.metric_columns])
        for key, values in matrix.metric_rows.items():
            writer.writerow([*key, *("" if v is None else f"{v:.6g}" for v in values)])


def write_heatmap(matrix: Matrix, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = np.array([[np.nan if v is None else 100 * v for v in values]
                     for _, values, _ in matrix.rows], dtype=float)
    labels = [" / ".join(key) for key, _, _ in matrix.rows]
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(matrix.columns), 1.2 + 0.5 * len(labels)))
    image = ax.imshow(data, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(matrix.columns)), matrix.columns, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for (i, j), value in np.ndenumerate(data):
        text = "—" if np.isnan(value) else f"{value:.1f}"
        ax.text(j, i, text, ha="center", va="center",
                color="white" if np.isnan(value) or value < 60 else "black", fontsize=9)
    ax.set_title(f"{matrix.suite}: accuracy (%) by training and attack")
    fig.colorbar(image, ax=ax, label="accuracy (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def results_json(matrix: Matrix) -> dict:
    """Everything the report shows, per row, for analysis in other tools (accuracies as 0–1)."""
    rows = []
    for key, values, seeds in matrix.rows:
        row = {"key": dict(zip(matrix.row_keys, key, strict=True)), "seeds": seeds,
               "accuracy": dict(zip(matrix.columns, values, strict=True)),
               "flags": {column: raised for (k, column), raised in matrix.flags.items()
                         if k == key},
               "median_norm": {attack: norm for (k, attack), norm in matrix.median_norms.items()
                               if k == key}}
        if matrix.metric_columns:  # NaN (a metric undefined for the model) is null in JSON
            row["metrics"] = {name: None if v is None or math.isnan(v) else v for name, v in
                              zip(matrix.metric_columns, matrix.metric_rows.get(key, []),
                                  strict=False)}
        rows.append(row)
    return {"run": matrix.run_id, "suite": matrix.suite, "mode": matrix.mode,
            "columns": matrix.columns, "rows": rows,
            "curves": [[{"eps": eps, "column": column} for eps, column in curve]
                       for curve in matrix.curves],
            "failures": matrix.failures}


def render_html(matrix: Matrix, images: list[str]) -> str:
    """A self-contained page: the matrix (hover a ⚑ for its flags), metrics, failures, plots."""
    from html import escape

    def table(header: list[str], rows: list[list[str]], titles: list[list[str]] | None = None
              ) -> str:
        head = "".join(f"<th>{escape(h)}</th>" for h in header)
        body = "".join(
            "<tr>" + "".join(f'<td title="{escape(titles[i][j]) if titles else ""}">'
                             f"{escape(cell)}</td>" for j, cell in enumerate(row)) + "</tr>"
            for i, row in enumerate(rows))
        return f"<table><tr>{head}</tr>{body}</table>"

    width = len(matrix.row_keys) + 1
    titles = [["" for _ in range(width)] + [
        "; ".join(f"{name}: {detail}" for name, detail in matrix.flags.get((key, c), {}).items())
        for c in matrix.columns] for key, _, _ in matrix.rows]
    parts = [f"<h1>{escape(matrix.suite)}: cross-attack matrix (run {matrix.run_id})</h1>",
             "<p>Accuracy in %; seeds averaged; — a missing or failed cell; ⚑ a flagged number "
             "(hover it).</p>", table(matrix.header(), matrix.formatted_rows(), titles)]
    if matrix.metric_columns:
        parts += ["<h2>Architecture metrics</h2>", table(
            [*matrix.row_keys, *matrix.metric_columns],
            [[*key, *("—" if v is None else f"{v:.4g}" for v in values)]
             for key, values in matrix.metric_rows.items()])]
    if matrix.failures:
        parts += ["<h2>Failed cells</h2><ul>"] + [f"<li>{escape(f)}</li>"
                                                  for f in matrix.failures] + ["</ul>"]
    parts += [f'<p><img src="{escape(name)}" alt="{escape(name)}"></p>' for name in images]
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}img{max-width:100%}")
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{escape(matrix.suite)}"
            f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>\n")


def write_report(store: Store, run_id: int | None, out_dir: Path) -> tuple[Matrix, list[Path]]:
    matrix = build_matrix(store, run_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "report.md", out_dir / "matrix.csv", out_dir / "matrix.png",
               out_dir / "results.json"]
    written[0].write_text(render_markdown(matrix, store), encoding="utf-8")
    write_csv(matrix, written[1])
    write_heatmap(matrix, written[2])
    written[3].write_text(json.dumps(results_json(matrix), indent=2, allow_nan=False),
                          encoding="utf-8")
    if matrix.metric_columns:
        written.append(out_dir / "metrics.csv")
        write_metrics_csv(matrix, written[-1])
    if matrix.curves:
        written.append(out_dir / "curves.png")
        write_curves(matrix, written[-1])
    if write_history(store, matrix.run_id, out_dir / "history.png"):
        written.append(out_dir / "history.png")
    html = out_dir / "report.html"
    html.write_text(render_html(matrix, [p.name for p in written if p.suffix == ".png"]),
                    encoding="utf-8")
    return matrix, [*written, html]
