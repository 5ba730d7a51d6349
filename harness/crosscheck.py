"""Cross-backend agreement: run two implementations of "the same" attack on trained models.

PGD through torchattacks and through ART, with matching steps and step size, should break the
same examples up to their random starts; a large gap means one wrapper (or toolkit) is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from harness.build import build_attack
from harness.cells import EvalCell, Plan, Resolved
from harness.components import Components
from harness.errors import UserError
from harness.evaluate import clean_correct, run_attack
from harness.resolve import resolve_attacks
from harness.runner import Runner
from harness.specs import FP32_EAGER, AttackRef
from harness.store import Store
from harness.tomlfile import Where


@dataclass
class Agreement:
    cell: str
    examples: int
    accuracy: tuple[float, float]
    disagreement: float  # fraction of attacked examples where exactly one attack succeeded

    @property
    def gap_points(self) -> float:
        return 100 * abs(self.accuracy[0] - self.accuracy[1])


def resolve_pair(components: Components, names: tuple[str, str], eps: float | None
                 ) -> tuple[Resolved, Resolved]:
    resolved = []
    for name in names:
        ref = AttackRef(name=name, eps=None if eps is None else [eps])
        resolved += resolve_attacks(components, ref, Where("command line", ("attack",)))
    first, second = resolved
    if first.threat != second.threat:
        raise UserError(f"attacks {names[0]!r} ({first.threat.describe()}) and {names[1]!r} "
                        f"({second.threat.describe()}) have different threat models; "
                        "pass --eps or pick matching presets")
    return first, second


def crosscheck(components: Components, plan: Plan, store: Store, pair: tuple[Resolved, Resolved],
               device: torch.device, data_root: Path, max_examples: int | None = None
               ) -> list[Agreement]:
    """Both attacks on the first ``max_examples`` test examples (default: the suite's) of
    every trained model, each seeded as the run seeds an eval cell: an attack that is also
    in the suite gives the matrix's number here."""
    if max_examples is None:
        max_examples = plan.evaluation.max_examples
    runner = Runner(components, store, device, data_root)
    # the suite's precision on this device (bf16 on CUDA), as its eval cells run
    speed = plan.eval_cells[0].speed if plan.eval_cells else FP32_EAGER
    results = []
    for cell in plan.train_cells:
        finished = store.finished_train_cell(cell.hash)
        if finished is None or store.checkpoint_problem(finished) is not None:
            continue  # not trained, or its weights are gone: 'harness run' retrains it
        data = runner.dataset(cell.dataset, plan)
        model = runner.load_model(cell, data, Path(finished["checkpoint"]),
                                  finished["checkpoint_sha256"])
        x, y = runner.eval_data(cell.dataset, data, max_examples)
        correct = clean_correct(model, x, y, plan.evaluation.batch_size)
        batch = plan.evaluation.batch_size
        robust = [run_attack(model, build_attack(components, attack), x, y, correct, batch,
                             EvalCell(cell, attack, max_examples, batch, speed=speed).seed,
                             speed).robust
                  for attack in pair]
        attacked = max(int(correct.sum()), 1)
        results.append(Agreement(
            cell.describe().removeprefix("train "), len(y),
            (float(robust[0].float().mean()), float(robust[1].float().mean())),
            float((robust[0] != robust[1]).sum()) / attacked))
    if not results:
        raise UserError(f"{plan.suite.path}: no trained model in {store.root}; run "
                        f"'harness run {plan.suite.path}' first (or pass --output)")
    return results
