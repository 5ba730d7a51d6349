"""Architecture metrics against robustness: does metric X rank the architectures as robust
accuracy under attack Y does?

Rows are grouped by training (dataset and recipe) so a correlation compares architectures
trained alike, never standard against adversarial training. Within a group each architecture is
one point at its seed means (seeds give its error bars, not extra points: seeds of one
architecture are not independent architectures), and Spearman's ρ is computed over those points
with a Fisher-z interval and an exact permutation p (``harness.stats.spearman``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.matrix import CLEAN, Key, Matrix
from harness.stats import Correlation, Interval, smallest_p, spearman
from harness.unseen import RATIO, SeenUnseen

#: training summary numbers that are properties of the trained model, not outcomes to explain
TRAINING_METRICS = ("training.robust_gap",)


@dataclass(frozen=True)
class Point:
    label: str  # the architecture
    x: Interval  # the metric over seeds
    y: Interval  # the accuracy (or ratio) over seeds


@dataclass(frozen=True)
class Pair:
    group: Key  # (dataset,) recipe
    metric: str
    target: str
    points: list[Point]
    correlation: Correlation

    def as_json(self) -> dict:
        c = self.correlation
        return {"group": list(self.group), "metric": self.metric, "target": self.target,
                "n": c.n, "rho": c.rho, "low": c.low, "high": c.high, "p": c.p_value,
                "conclusive": c.conclusive(),
                "points": [{"architecture": p.label, "x": p.x.as_json(), "y": p.y.as_json()}
                           for p in self.points]}


def analysis_metrics(matrix: Matrix) -> list[str]:
    """The metric columns that describe an architecture (the training summary's accuracies are
    outcomes, its robust generalization gap is a property of the trained model)."""
    return [m for m in matrix.metric_columns
            if not m.startswith("training.") or m in TRAINING_METRICS]


def targets(matrix: Matrix, seen_unseen: list[SeenUnseen]) -> list[str]:
    """Robust accuracy under each attack, the worst case, and unseen/seen where it exists."""
    return [c for c in matrix.columns if c != CLEAN] + ([RATIO] if seen_unseen else [])


def groups(matrix: Matrix) -> dict[Key, list[Key]]:
    """Rows by training: the row key without its architecture."""
    position = matrix.row_keys.index("architecture")
    found: dict[Key, list[Key]] = {}
    for key, _, _ in matrix.rows:
        found.setdefault(key[:position] + key[position + 1:], []).append(key)
    return found


def _finite(interval: Interval | None) -> bool:
    return interval is not None and math.isfinite(interval.mean)


def analyze(matrix: Matrix, seen_unseen: list[SeenUnseen]) -> list[Pair]:
    """Every (group, metric, target) with at least two architectures that have both values."""
    ratios = {e.key: e.ratio for e in seen_unseen}
    position = matrix.row_keys.index("architecture")
    pairs = []
    for group, keys in groups(matrix).items():
        for metric in analysis_metrics(matrix):
            for target in targets(matrix, seen_unseen):
                points = []
                for key in keys:
                    x = matrix.metric_interval(key, metric)
                    y = ratios.get(key) if target == RATIO else matrix.interval(key, target)
                    if _finite(x) and _finite(y):
                        points.append(Point(key[position], x, y))  # type: ignore[arg-type]
                if len(points) >= 2:
                    pairs.append(Pair(group, metric, target, points, spearman(
                        [p.x.mean for p in points], [p.y.mean for p in points])))
    return pairs


def undertrained(matrix: Matrix, keys: list[Key]) -> list[tuple[Key, float]]:
    """Rows whose clean accuracy is under 3/4 of the best of their group: a model that did not
    learn is no evidence about its architecture's robustness (a constant predictor is even
    'robust' on the class it always outputs), so the tables name them."""
    clean = {k: v[0] for k, v, _ in matrix.rows if k in keys and v and v[0] is not None}
    best = max(clean.values(), default=0.0)
    return [(k, c) for k, c in clean.items() if c < 0.75 * best]


def undertrained_note(found: list[tuple[Key, float]], position: int) -> str:
    if not found:
        return ""
    listed = ", ".join(f"{k[position]} ({100 * c:.1f}% clean)" for k, c in found)
    return (f"Check before reading: {listed} reached under 3/4 of the group's best clean "
            f"accuracy, so the recipe may not have trained {'it' if len(found) == 1 else 'them'}; "
            "included as measured.")


def small_n_note(n: int) -> str:
    """What n points can and cannot show, in one sentence."""
    if n < 5:
        return (f"With n = {n} architectures nothing can be concluded: even a perfect rank order "
                f"has exact p = {smallest_p(n):.3g}, the smallest possible at this n "
                "(p < 0.05 needs n ≥ 5), and Fisher intervals need n ≥ 4.")
    return (f"With n = {n} architectures a correlation is called (bold) only when p < 0.05 and "
            "its 95% interval excludes 0; at this n intervals are wide, and a ρ that is not "
            "bold means 'cannot be told', not 'no relation'.")


def cell(c: Correlation) -> str:
    """ρ [low, high] p, bold when conclusive; '—' when a variable is constant."""
    if c.rho is None:
        return "—"
    bounds = "" if c.low is None else f" [{c.low:+.2f}, {c.high:+.2f}]"
    text = f"{c.rho:+.2f}{bounds} p={c.p_value:.2g}"
    return f"**{text}**" if c.conclusive() else text


METHOD = ("Spearman's ρ over architectures (each at its mean over seeds), 95% Fisher-z interval "
          "with Bonett–Wright standard error, exact permutation p (two-sided; sampled above 9 "
          "points).")


@dataclass(frozen=True)
class GroupTable:
    """One training group's correlations: metrics down, targets across, and what n allows."""

    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str]


def tables(pairs: list[Pair], matrix: Matrix) -> list[GroupTable]:
    by_group: dict[Key, list[Pair]] = {}
    for pair in pairs:
        by_group.setdefault(pair.group, []).append(pair)
    found = []
    for group, in_group in by_group.items():
        columns = list(dict.fromkeys(p.target for p in in_group))
        n = max(p.correlation.n for p in in_group)
        seeds = sorted({len(matrix.seeds.get(k, [])) for k in groups(matrix)[group]})
        rows, constant = [], []
        for metric in dict.fromkeys(p.metric for p in in_group):
            row = {p.target: p for p in in_group if p.metric == metric}
            if all(p.correlation.rho is None for p in row.values()):
                constant.append(metric)
                continue
            rows.append([metric, *(cell(row[c].correlation) if c in row else "" for c in columns)])
        tested = sum(p.correlation.rho is not None for p in in_group)
        notes = [small_n_note(n), f"{tested} pairs are tested here: at p < 0.05 about "
                 f"{tested / 20:.1f} would come out bold by chance alone, so read the pair a "
                 "question named beforehand, not the best-looking one."]
        weak = undertrained_note(undertrained(matrix, groups(matrix)[group]),
                                 matrix.row_keys.index("architecture"))
        if weak:
            notes.append(weak)
        if constant:
            notes.append(f"Constant across these architectures (nothing to rank): "
                         f"{', '.join(constant)}.")
        found.append(GroupTable(f"{' / '.join(group)}: {n} architectures, "
                                f"{'/'.join(map(str, seeds))} seed(s) each",
                                ["metric", *columns], rows, notes))
    return found


def markdown(pairs: list[Pair], matrix: Matrix, heading: str = "###") -> str:
    found = tables(pairs, matrix)
    if not found:
        return ("No training group has two architectures with both a metric and a robust "
                "accuracy: nothing to correlate.")
    parts = [METHOD]
    for table in found:
        parts += ["", f"{heading} {table.title}", "",
                  "| " + " | ".join(table.header) + " |",
                  "|---|" + "---:|" * (len(table.header) - 1)]
        parts += ["| " + " | ".join(row) + " |" for row in table.rows]
        parts += ["", *table.notes]
    return "\n".join(parts)
