"""Every plot of a run, as PNG files (matplotlib, headless): the matrix heatmap, robustness
curves, training histories, metric-against-robustness scatters and seen/unseen bars.

Error bars are 95% t-intervals over seeds wherever a row has several seeds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from harness.analyze import Pair
from harness.compare import ColumnComparison
from harness.matrix import Matrix
from harness.stats import Interval
from harness.store import Store
from harness.unseen import RATIO, SeenUnseen


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _errors(intervals: list[Interval], scale: float = 1.0) -> np.ndarray | None:
    """matplotlib's 2×n (below, above) error sizes; None when no point has an interval."""
    if all(i.low is None for i in intervals):
        return None
    return np.array([[scale * (i.mean - i.low) if i.low is not None else 0 for i in intervals],
                     [scale * (i.high - i.mean) if i.high is not None else 0
                      for i in intervals]])


def write_heatmap(matrix: Matrix, path: Path) -> None:
    plt = _pyplot()
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


def write_curves(matrix: Matrix, path: Path) -> None:
    """Accuracy against eps from eps = 0 (clean accuracy), one panel per swept attack."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(matrix.curves), figsize=(5 * len(matrix.curves), 3.8),
                             squeeze=False)
    for ax, curve in zip(axes[0], matrix.curves, strict=True):
        points = matrix.curve_points(curve)
        for key, _, _ in matrix.rows:
            found = [(eps, i) for eps, column in points
                     if (i := matrix.interval(key, column)) is not None]
            if not found:
                continue
            ax.errorbar([eps for eps, _ in found], [100 * i.mean for _, i in found],
                        yerr=_errors([i for _, i in found], 100), marker="o", capsize=3,
                        label=" / ".join(key))
        ax.set_xlabel("eps")
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 100)
        ax.set_title(curve[0][1].split("@")[0])
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_history(store: Store, run_id: int | None, path: Path) -> bool:
    """Per-epoch loss and probe accuracies of every train cell of the run; False if none."""
    plt = _pyplot()
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


def write_scatter(pairs: list[Pair], path: Path) -> None:
    """One metric of one training group against every target: a panel per target, a point
    per architecture (labelled), seeds as error bars, ρ and its interval in the title."""
    plt = _pyplot()
    ncols = min(3, len(pairs))
    nrows = -(-len(pairs) // ncols)
    size = (3.8, 3.4) if len(pairs) > 1 else (5.6, 4.4)  # a lone panel has room for labels
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows),
                             squeeze=False)
    for ax in axes.flat[len(pairs):]:
        ax.set_visible(False)
    for ax, pair in zip(axes.flat, pairs, strict=False):
        scale = 1.0 if pair.target == RATIO else 100.0  # accuracies in %, the ratio as is
        xs = [p.x.mean for p in pair.points]
        ys = [scale * p.y.mean for p in pair.points]
        ax.errorbar(xs, ys, xerr=_errors([p.x for p in pair.points]),
                    yerr=_errors([p.y for p in pair.points], scale), fmt="o", capsize=3)
        for p, x, y in zip(pair.points, xs, ys, strict=True):
            ax.annotate(p.label, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
        c = pair.correlation
        rho = "ρ undefined" if c.rho is None else f"ρ = {c.rho:+.2f}" + (
            "" if c.low is None else f" [{c.low:+.2f}, {c.high:+.2f}]")
        ax.set_title(f"{pair.target}\n{rho}, n = {c.n}", fontsize=8)
        ax.set_xlabel(pair.metric, fontsize=8)
        ax.set_ylabel(pair.target if scale == 1.0 else "robust accuracy (%)", fontsize=8)
        if min(xs) > 0 and max(xs) / min(xs) > 10:  # sizes spanning a decade or more
            ax.set_xscale("log")
        ax.tick_params(labelsize=7)
    fig.suptitle(" / ".join(pairs[0].group), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_seen_unseen(entries: list[SeenUnseen], path: Path) -> None:
    """Seen and unseen robust accuracy per trained model, side by side, with seed intervals."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(2.5 + 1.1 * len(entries), 4.6))
    positions = np.arange(len(entries))
    for offset, name, pick in ((-0.2, "seen", lambda e: e.seen_accuracy),
                               (0.2, "unseen", lambda e: e.unseen_accuracy)):
        intervals = [pick(e) for e in entries]
        ax.bar(positions + offset, [100 * i.mean for i in intervals], width=0.4, label=name,
               yerr=_errors(intervals, 100), capsize=3)
    ax.set_xticks(positions, ["\n".join(e.key) for e in entries], rotation=30, ha="right",
                  fontsize=7)
    ax.set_ylabel("robust accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    ax.set_title("worst case over the training threat's attacks (seen) and over the other "
                 "norms' (unseen)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_paired(compared: ColumnComparison, first: str, second: str, path: Path) -> None:
    """Two rows seed by seed on one column: a line per seed joins its pair."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    for seed, a, b in zip(compared.seeds, compared.per_seed_a, compared.per_seed_b, strict=True):
        ax.plot([0, 1], [100 * a, 100 * b], marker="o", color="tab:gray", alpha=0.7)
        ax.annotate(f"seed {seed}", (1, 100 * b), fontsize=6, xytext=(4, 0),
                    textcoords="offset points")
    for x, interval in ((0, compared.accuracy_a), (1, compared.accuracy_b)):
        ax.errorbar([x - 0.08], [100 * interval.mean], yerr=_errors([interval], 100),
                    fmt="s", color="black", capsize=4)
    ax.set_xticks([0, 1], [label.replace(" / ", "\n") for label in (first, second)], fontsize=7)
    ax.set_xlim(-0.4, 1.5)
    ax.set_ylabel(f"{compared.column} accuracy (%)", fontsize=8)
    ax.set_title("paired by seed; black: mean and 95% t-interval", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
