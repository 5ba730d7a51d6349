"""Suite → plan: resolve every entry, check it against the data, and lay out the cells.

The plan is the product dataset × architecture × recipe × seed (train cells), each crossed with
every attack (eval cells); labels name the matrix's rows and columns, so they must be unique.
"""

from __future__ import annotations

from typing import Any

from harness.cells import PRETRAINED, EvalCell, Plan, Resolved, TrainCell
from harness.checks import check_suite
from harness.components import Components
from harness.resolve import resolve_attacks, resolve_component, resolve_metrics, resolve_recipe
from harness.suite import LoadedSuite
from harness.tomlfile import Where


def _unique_labels(labelled: list[tuple[str, int]], where: Where) -> None:
    """Labels name matrix rows and columns, so two items may not share one."""
    seen: dict[str, int] = {}
    for label, index in labelled:
        if label in seen and seen[label] != index:
            raise where.child(index).error(
                f"label {label!r} is used twice (also at index {seen[label]}); "
                "give one of them label = \"...\"")
        seen[label] = index


def _no_duplicate_cells(cells: list[Any], what: str, where: Where) -> None:
    """Two entries that resolve to the same configuration would be one cell computed twice."""
    seen: dict[str, Any] = {}
    for cell in cells:
        if cell.hash in seen:
            raise where.error(
                f"{seen[cell.hash].describe()!r} and {cell.describe()!r} are the same {what} "
                "(identical resolved configuration); remove one")
        seen[cell.hash] = cell


def build_plan(components: Components, loaded: LoadedSuite, device_type: str = "cpu") -> Plan:
    """The suite's cells as they run on ``device_type``: its CUDA speed settings (bf16,
    channels_last) are part of what a cell computes, so they are resolved and hashed here."""
    suite, where = loaded.suite, Where(str(loaded.path))
    datasets = [resolve_component(components, "datasets", ref, where.child("datasets", i))
                for i, ref in enumerate(suite.datasets)]
    archs = [resolve_component(components, "architectures", ref, where.child("architectures", i))
             for i, ref in enumerate(suite.architectures)]
    recipes = [resolve_recipe(components, ref, where.child("recipes", i))
               for i, ref in enumerate(suite.recipes) if ref.name != PRETRAINED]
    attacks: list[tuple[Resolved, Where]] = [  # one per eps value, with the entry it came from
        (attack, where.child("attacks", i)) for i, ref in enumerate(suite.attacks)
        for attack in resolve_attacks(components, ref, where.child("attacks", i))]
    for kind, items in (("datasets", datasets), ("architectures", archs), ("recipes", recipes)):
        _unique_labels([(item.label, i) for i, item in enumerate(items)], where.child(kind))
    _unique_labels([(a.label, int(w.loc[-1])) for a, w in attacks], where.child("attacks"))
    check_suite(components, datasets, archs, recipes, attacks, where)
    metrics = resolve_metrics(components, loaded, where)
    _unique_labels([(m.metric.label, i) for i, m in enumerate(metrics)], where.child("metrics"))
    plan = Plan(loaded, attacks=[attack for attack, _ in attacks], metrics=metrics)
    for i, arch in enumerate(archs):
        if not arch.pretrained and not recipes:
            raise where.child("architectures", i).error(
                f"architecture {arch.label!r} has no weights and the suite has no recipe to "
                "train it; add recipes = [...], or weights = { path = \"...\" } to evaluate "
                "a trained model")
    speed = suite.evaluation.speed_on(device_type)
    for dataset in datasets:
        for arch in archs:
            # a pretrained model is evaluated as it is: one cell, whatever recipes and seeds
            trainings = [(None, 0)] if arch.pretrained else [
                (recipe.on_device(device_type), seed) for recipe in recipes
                for seed in suite.seeds]
            for recipe, seed in trainings:
                cell = TrainCell(dataset, arch, recipe, seed)
                plan.train_cells.append(cell)
                plan.eval_cells += [
                    EvalCell(cell, attack, suite.evaluation.max_examples,
                             suite.evaluation.batch_size, suite.evaluation.mode,
                             tuple(a.config() for a in plan.attacks[:i])
                             if suite.evaluation.mode == "worst-case" else (), speed,
                             suite.evaluation.cross_check() if speed.amp else None)
                    for i, attack in enumerate(plan.attacks)]
    _no_duplicate_cells(plan.train_cells, "training run", where)
    for cell in plan.train_cells[:1]:
        _no_duplicate_cells(plan.evals_of(cell), "attack", where.child("attacks"))
    return plan
