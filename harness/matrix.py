"""The cross-attack matrix, rebuilt from the database alone, with its flags and metrics.

Rows are (architecture, training recipe) — with the dataset when a suite has several — and
columns are clean accuracy, each attack's robust accuracy and the worst case over all attacks,
computed per example. A row's seeds are kept one by one (values and per-example outcomes), so
every number can be shown as a mean with its interval over seeds, and two rows can be compared
example by example.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import pairwise
from statistics import mean

import numpy as np

from harness.errors import UserError
from harness.stats import Interval, t_interval
from harness.store import Store, unpack_bools

WORST = "worst case"
CLEAN = "clean"

Key = tuple[str, ...]
#: one seed of a row: column → per-example outcome (clean-correct, or robust), None if missing
Outcomes = dict[str, np.ndarray | None]


@dataclass
class Matrix:
    run_id: int
    suite: str
    row_keys: list[str]
    columns: list[str]
    rows: list[tuple[Key, list[float | None], int]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    #: (row key, column) → flags raised there, e.g. {"zero-gradients": "…"}
    flags: dict[tuple[Key, str], dict[str, str]] = field(default_factory=dict)
    #: architecture metrics: column names and, per row key, the seed-averaged values
    metric_columns: list[str] = field(default_factory=list)
    metric_rows: dict[Key, list[float | None]] = field(default_factory=dict)
    #: (row key, attack) → seed-averaged median perturbation norm of minimum-norm attacks
    median_norms: dict[tuple[Key, str], float] = field(default_factory=dict)
    mode: str = "per-attack"
    #: robustness curves: for each attack swept over eps, its (eps, column) points in order
    curves: list[list[tuple[float, str]]] = field(default_factory=list)
    #: per row: its seeds, and each seed's values (in ``columns`` / ``metric_columns`` order)
    seeds: dict[Key, list[int]] = field(default_factory=dict)
    seed_values: dict[Key, list[list[float | None]]] = field(default_factory=dict)
    seed_metrics: dict[Key, list[list[float | None]]] = field(default_factory=dict)
    #: per row: each seed's per-example outcomes (clean and every attack)
    outcomes: dict[Key, list[Outcomes]] = field(default_factory=dict)
    #: per row: the (norm, eps) its recipe trains against; None for standard training
    training_threat: dict[Key, tuple[str, float] | None] = field(default_factory=dict)
    #: attack label → (norm, eps)
    threats: dict[str, tuple[str, float]] = field(default_factory=dict)

    def header(self) -> list[str]:
        return [*self.row_keys, "seeds", *self.columns]

    def interval(self, key: Key, column: str) -> Interval | None:
        """Mean and t-interval over the row's seeds; None when a seed lacks the value."""
        return _over_seeds(self.seed_values.get(key), self.columns.index(column))

    def metric_interval(self, key: Key, metric: str) -> Interval | None:
        return _over_seeds(self.seed_metrics.get(key), self.metric_columns.index(metric))

    def several_seeds(self) -> bool:
        return any(len(s) > 1 for s in self.seeds.values())

    def formatted_rows(self) -> list[list[str]]:
        """Percentages, as mean ± half the 95% interval over seeds when there are several; a
        flagged number carries a ⚑ (the flags are listed under the table)."""
        def text(key: Key, column: str, v: float | None) -> str:
            mark = " ⚑" if (key, column) in self.flags else ""
            if v is None:
                return "—" + mark
            found = self.interval(key, column)
            return (f"{100 * v:.1f}" if found is None else found.text(100)) + mark

        return [[*key, str(seeds), *(text(key, c, v) for c, v in zip(self.columns, values,
                                                                     strict=True))]
                for key, values, seeds in self.rows]

    def curve_points(self, curve: list[tuple[float, str]]) -> list[tuple[float, str]]:
        """A curve's points from eps = 0, where robust accuracy is clean accuracy."""
        return curve if curve[0][0] == 0 else [(0.0, CLEAN), *curve]


def _over_seeds(per_seed: list[list[float | None]] | None, index: int) -> Interval | None:
    if not per_seed:
        return None
    values = [seed[index] for seed in per_seed]
    if any(v is None for v in values):
        return None
    return t_interval(values)  # type: ignore[arg-type]


def _cell_flags(store: Store, plan: dict, cell: dict) -> dict[str, dict[str, str]]:
    """Column → flags raised for this train cell: model checks under 'clean', then attacks."""
    found = {}
    clean = store.clean_row(cell["hash"], plan["max_examples"])
    if clean is not None and clean["flags_json"] != "{}":
        found["clean"] = json.loads(clean["flags_json"])
    trained = store.train_cell(cell["hash"])
    if trained is not None and trained["flags_json"] != "{}":
        found.setdefault("clean", {}).update(json.loads(trained["flags_json"]))
    for e in plan["eval_cells"]:
        if e["train"] == cell["hash"]:
            row = store.eval_cell(e["hash"])
            if row is not None and row["flags_json"] not in (None, "{}"):
                found[e["attack"]] = json.loads(row["flags_json"])
    return found


def cell_outcomes(store: Store, plan: dict, cell: dict) -> Outcomes:
    """Per-example outcomes of one train cell: clean-correct and robust under each attack."""
    found: Outcomes = {CLEAN: store.clean(cell["hash"], plan["max_examples"])}
    by_label = {e["attack"]: e["hash"] for e in plan["eval_cells"] if e["train"] == cell["hash"]}
    for label in plan["attack_labels"]:
        row = store.eval_cell(by_label[label])
        found[label] = (unpack_bools(row["robust"]) if row is not None and row["status"] == "done"
                        else None)
    return found


def worst_case(outcomes: Outcomes, labels: list[str]) -> np.ndarray | None:
    """Robust to every attack in ``labels`` (and clean-correct), per example."""
    worst = outcomes[CLEAN]
    for label in labels:
        robust = outcomes[label]
        if worst is None or robust is None:
            return None
        worst = worst & robust
    return worst


def _cell_values(plan: dict, outcomes: Outcomes) -> list[float | None]:
    """Clean, each attack and the worst case for one train cell (None where missing/failed)."""
    values = [None if o is None else float(o.mean()) for o in outcomes.values()]
    if plan["attack_labels"]:
        worst = worst_case(outcomes, plan["attack_labels"])
        values.append(None if worst is None else float(worst.mean()))
    return values


def _training_threat(store: Store, cell: dict) -> tuple[str, float] | None:
    """The threat model the cell's recipe trains against, from its stored configuration."""
    row = store.train_cell(cell["hash"])
    recipe = json.loads(row["config_json"])["recipe"] if row is not None else None
    attack = recipe.get("attack") if isinstance(recipe, dict) else None  # "pretrained": none
    return None if attack is None else (attack["threat"]["norm"], float(attack["threat"]["eps"]))


def build_matrix(store: Store, run_id: int | None = None) -> Matrix:
    run = store.run(run_id)
    if run is None:
        raise UserError(f"{store.db_path}: no run {run_id if run_id is not None else ''} found; "
                        "list runs with 'harness report --list'")
    plan = json.loads(run["plan_json"])
    cells = plan["train_cells"]
    several_datasets = len({c["labels"]["dataset"] for c in cells}) > 1
    row_keys = (["dataset"] if several_datasets else []) + ["architecture", "recipe"]
    columns = ["clean", *plan["attack_labels"], *([WORST] if plan["attack_labels"] else [])]
    matrix = Matrix(int(run["id"]), run["suite_name"], row_keys, columns,
                    mode=plan.get("mode", "per-attack"))
    matrix.threats = {label: (a["norm"], float(a["eps"]))
                      for label, a in plan.get("attacks", {}).items()}
    for cell in cells:
        key = tuple(str(cell["labels"][k]) for k in row_keys)
        outcomes = cell_outcomes(store, plan, cell)
        matrix.outcomes.setdefault(key, []).append(outcomes)
        matrix.seed_values.setdefault(key, []).append(_cell_values(plan, outcomes))
        matrix.seeds.setdefault(key, []).append(int(cell["labels"]["seed"]))
        matrix.training_threat.setdefault(key, _training_threat(store, cell))
        for attack, raised in _cell_flags(store, plan, cell).items():
            matrix.flags.setdefault((key, attack), {}).update(raised)
    _add_metrics(store, plan, cells, row_keys, matrix)
    _add_median_norms(store, plan, cells, row_keys, matrix)
    for key, per_seed in matrix.seed_values.items():
        averaged = [None if any(v is None for v in col) else mean(col)  # type: ignore[arg-type]
                    for col in zip(*per_seed, strict=True)]
        matrix.rows.append((key, averaged, len(per_seed)))
    _add_derived_flags(matrix, plan.get("attacks", {}))
    groups_by_curve: dict[str, list[tuple[float, str]]] = {}
    for label, a in plan.get("attacks", {}).items():
        groups_by_curve.setdefault(a["curve"], []).append((a["eps"], label))
    matrix.curves = [sorted(points) for points in groups_by_curve.values() if len(points) > 1]
    for table in ("train_cells", "eval_cells"):
        hashes = [c["hash"] for c in plan[table]]
        marks = ",".join("?" * len(hashes))
        for row in store.conn.execute(
                f"SELECT * FROM {table} WHERE status='failed' AND hash IN ({marks})", hashes):
            what = row["attack_label"] if table == "eval_cells" else json.loads(
                row["labels_json"])
            matrix.failures.append(f"{what}: {row['error']}")
    return matrix


def _add_median_norms(store: Store, plan: dict, cells: list[dict], row_keys: list[str],
                      matrix: Matrix) -> None:
    minimum_norm = {label for label, a in plan.get("attacks", {}).items() if a["minimum_norm"]}
    found: dict[tuple[Key, str], list[float]] = {}
    keys = {c["hash"]: tuple(str(c["labels"][k]) for k in row_keys) for c in cells}
    for e in plan["eval_cells"]:
        if e["attack"] in minimum_norm:
            row = store.eval_cell(e["hash"])
            if row is not None and row["median_norm"] is not None:
                found.setdefault((keys[e["train"]], e["attack"]), []).append(row["median_norm"])
    matrix.median_norms = {k: mean(v) for k, v in found.items()}


def _add_derived_flags(matrix: Matrix, attacks: dict[str, dict]) -> None:
    """Flags only the whole row shows: a black-box attack beating every white-box attack of the
    same threat model (gradient masking), and robust accuracy rising with eps on a curve."""
    if matrix.mode != "per-attack":
        return  # cumulative columns cannot be compared attack against attack
    for key, values, _ in matrix.rows:
        acc = {c: v for c, v in zip(matrix.columns, values, strict=True) if v is not None}
        for label, a in attacks.items():
            if not a["black_box"] or label not in acc:
                continue
            white = [acc[o] for o, b in attacks.items() if o in acc and not b["black_box"]
                     and (b["norm"], b["eps"]) == (a["norm"], a["eps"])]
            if white and acc[label] < min(white):
                matrix.flags.setdefault((key, label), {})["black-box-beats-white-box"] = (
                    f"{100 * acc[label]:.1f}% < best white-box {100 * min(white):.1f}% at the same "
                    "budget: gradients may be masked")
        curves: dict[str, list[tuple[float, str]]] = {}
        for label, a in attacks.items():
            curves.setdefault(a["curve"], []).append((a["eps"], label))
        for points in curves.values():
            points = sorted(p for p in points if p[1] in acc)
            for (_, smaller), (eps, larger) in pairwise(points):
                if acc[larger] > acc[smaller]:
                    matrix.flags.setdefault((key, larger), {})["accuracy-rises-with-eps"] = (
                        f"{100 * acc[larger]:.1f}% at eps {eps:g} > {100 * acc[smaller]:.1f}% at "
                        "a smaller eps: the attack is not converging")


def _add_metrics(store: Store, plan: dict, cells: list[dict], row_keys: list[str],
                 matrix: Matrix) -> None:
    """Seed-averaged metric values per row; a metric returning several values gets a column each."""
    per_row: dict[Key, list[dict[str, float]]] = {}
    for cell in cells:
        key = tuple(str(cell["labels"][k]) for k in row_keys)
        values: dict[str, float] = {}
        trained = store.train_cell(cell["hash"])
        if trained is not None and trained["status"] == "done":
            for name, value in json.loads(trained["summary_json"]).items():
                values[f"training.{name}"] = value
        for metric in plan.get("metrics", []):
            row = store.metric(cell["hash"], metric["hash"])
            if row is not None and row["status"] == "done":
                for name, value in json.loads(row["values_json"]).items():
                    values[name if name == metric["label"] else f"{metric['label']}.{name}"] = value
        per_row.setdefault(key, []).append(values)
    columns = sorted({name for runs in per_row.values() for values in runs for name in values})
    matrix.metric_columns = columns
    for key, runs in per_row.items():
        matrix.seed_metrics[key] = [[v.get(c) for c in columns] for v in runs]
        matrix.metric_rows[key] = [
            mean([v[c] for v in runs]) if all(c in v for v in runs) else None for c in columns]
