"""Two rows of a run, compared on the same examples: is A more robust than B, or is it noise?

Seed s of A is paired with seed s of B (only seeds both rows have). Per column (clean, each
attack, the worst case) this gives the exact McNemar test on every (seed, example) pair, the
accuracy difference with a paired bootstrap interval over examples (seeds held fixed: the test
set's sampling error), and, with two or more seeds, a t-interval over the per-seed differences
(training's seed-to-seed variation, the one an architecture claim has to survive).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.errors import UserError
from harness.matrix import WORST, Key, Matrix, worst_case
from harness.stats import Interval, PairedTest, paired_test, t_interval


@dataclass(frozen=True)
class ColumnComparison:
    column: str
    seeds: list[int]
    per_seed_a: list[float]  # accuracy of each matched seed
    per_seed_b: list[float]
    accuracy_a: Interval  # over the matched seeds
    accuracy_b: Interval
    test: PairedTest  # McNemar over every (seed, example) pair; bootstrap over examples
    over_seeds: Interval | None  # t-interval of the per-seed differences (two or more seeds)


def row_label(key: Key) -> str:
    return " / ".join(key)


def find_row(matrix: Matrix, text: str) -> Key:
    """The row named ``text``: its full label ('arch / recipe'), its trailing part, or one
    component that only one row has."""
    parts = tuple(p.strip() for p in text.split("/"))
    keys = [key for key, _, _ in matrix.rows]
    matches = [k for k in keys if k[-len(parts):] == parts] or (
        [k for k in keys if parts[0] in k] if len(parts) == 1 else [])
    if len(matches) == 1:
        return matches[0]
    listed = "; ".join(row_label(k) for k in (matches or keys))
    what = "matches several rows" if matches else "is not a row of this run"
    raise UserError(f"{text!r} {what} (run {matrix.run_id}); rows: {listed}")


def _seed_arrays(matrix: Matrix, key: Key, seeds: list[int], column: str) -> np.ndarray | None:
    """Seeds × examples outcomes of one column, None when a cell is missing."""
    by_seed = dict(zip(matrix.seeds[key], matrix.outcomes[key], strict=True))
    attacks = [c for c in matrix.columns if c not in ("clean", WORST)]
    arrays = [worst_case(by_seed[s], attacks) if column == WORST else by_seed[s][column]
              for s in seeds]
    return None if any(a is None for a in arrays) else np.stack(arrays)  # type: ignore[arg-type]


def compare_rows(matrix: Matrix, a: Key, b: Key, columns: list[str] | None = None
                 ) -> list[ColumnComparison]:
    if a == b:
        raise UserError(f"{row_label(a)!r} compared with itself; name two different rows")
    if "dataset" in matrix.row_keys and a[0] != b[0]:
        raise UserError(f"{row_label(a)!r} and {row_label(b)!r} are evaluated on different "
                        "datasets: a paired test needs the same examples")
    seeds = sorted(set(matrix.seeds[a]) & set(matrix.seeds[b]))
    if not seeds:
        raise UserError(f"{row_label(a)!r} and {row_label(b)!r} share no seed to pair")
    unknown = [c for c in columns or [] if c not in matrix.columns]
    if unknown:
        raise UserError(f"no column {unknown[0]!r} in run {matrix.run_id}; columns: "
                        f"{', '.join(matrix.columns)}")
    found = []
    for column in columns or matrix.columns:
        first, second = (_seed_arrays(matrix, a, seeds, column),
                         _seed_arrays(matrix, b, seeds, column))
        if first is None or second is None:
            continue  # a missing or failed cell: nothing to pair
        if first.shape != second.shape:
            raise UserError(f"{row_label(a)!r} and {row_label(b)!r} are evaluated on "
                            "different numbers of examples: a paired test needs the same ones")
        acc_a, acc_b = first.mean(axis=1), second.mean(axis=1)
        found.append(ColumnComparison(
            column, seeds, acc_a.tolist(), acc_b.tolist(), t_interval(acc_a), t_interval(acc_b),
            paired_test(first, second), t_interval(acc_a - acc_b) if len(seeds) > 1 else None))
    return found


def markdown(results: list[ColumnComparison], a: Key, b: Key) -> str:
    """A table of the comparison and a line saying how it was computed."""
    seeds = results[0].seeds if results else []
    lines = [f"A = {row_label(a)}, B = {row_label(b)}; seeds {', '.join(map(str, seeds))} "
             f"paired by seed, {results[0].test.pairs // max(len(seeds), 1) if results else 0} "
             "examples each.", "",
             "| column | A % | B % | A − B (pp) | 95% CI, examples | 95% CI, seeds | "
             "A only | B only | McNemar p |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        d = r.test.difference
        seeds_ci = ("—" if r.over_seeds is None or r.over_seeds.low is None else
                    f"[{100 * r.over_seeds.low:+.1f}, {100 * r.over_seeds.high:+.1f}]")
        lines.append(
            f"| {r.column} | {r.accuracy_a.text(100)} | {r.accuracy_b.text(100)} | "
            f"{100 * d.mean:+.1f} | [{100 * d.low:+.1f}, {100 * d.high:+.1f}] | {seeds_ci} | "
            f"{r.test.only_a} | {r.test.only_b} | {r.test.p_value:.3g} |")
    lines += ["", "CI over examples: paired percentile bootstrap of the mean per-example difference "
              "(averaged over the seeds); CI over seeds: t-interval of the per-seed accuracy "
              "differences; McNemar: exact binomial test of the discordant (seed, example) "
              "pairs, two-sided."]
    return "\n".join(lines)
