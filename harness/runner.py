"""Execute a plan cell by cell: skip what the store has, train, evaluate, record every outcome.

A failing cell (an exception, a NaN loss, an attack breaking its threat model) is recorded with
its error and the run goes on; a user error (a dataset whose files are missing) stops it.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from harness.build import build_attack, build_metric, build_model, load_dataset
from harness.cells import EvalCell, MetricSpec, Plan, Resolved, TrainCell, stable_hash
from harness.checkpoints import (
    load_checkpoint,
    newest_intact,
    save_checkpoint,
    save_state_dict,
)
from harness.components import Components
from harness.contracts import LoadedDataset
from harness.data import as_tensors, to_device
from harness.errors import UserError
from harness.evaluate import check_model, clean_correct, run_attack
from harness.flags import collect_flags, raise_flag
from harness.seeding import preserved_rng
from harness.store import Store, unpack_bools
from harness.train import PROBE_SEED, train


@dataclass
class RunSummary:
    run_id: int
    computed: int = 0
    cached: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def plan_record(plan: Plan, components: Components) -> dict[str, Any]:
    """What the report needs to rebuild the matrix from the database alone."""
    return {
        "suite": plan.suite.name,
        "attack_labels": plan.attack_labels,
        "train_cells": [{"hash": c.hash, "labels": c.labels} for c in plan.train_cells],
        "eval_cells": [{"hash": e.hash, "train": e.train.hash, "attack": e.attack.label}
                       for e in plan.eval_cells],
        "attacks": {a.label: _attack_record(components, a) for a in plan.attacks},
        "mode": plan.evaluation.mode,
        "max_examples": plan.evaluation.max_examples,
        "metrics": [{"label": m.metric.label, "hash": m.hash} for m in plan.metrics],
    }


def _attack_record(components: Components, attack: Resolved) -> dict[str, Any]:
    """What the report's validity checks need: threat model, black-box, curve grouping."""
    entry = components.attacks.get(attack.factory)
    return {"norm": attack.threat.norm, "eps": attack.threat.eps, "black_box": entry.black_box,
            "minimum_norm": entry.minimum_norm,
            "curve": stable_hash([attack.factory, attack.params, attack.threat.norm])}


def describe_error(exc: BaseException) -> str:
    """The exception and the innermost frame it came from: enough to find the bug."""
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {Path(frame[0].filename).name}:{frame[0].lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _no_input_gradient(exc: BaseException) -> bool:
    """Autograd's ways of saying the loss does not depend differentiably on the input."""
    return isinstance(exc, RuntimeError) and any(
        text in str(exc) for text in ("does not require grad", "not have been used in the graph",
                                      "does not have a grad_fn"))


def _dataset_key(resolved: Resolved) -> str:
    return repr((resolved.factory, sorted(resolved.params.items())))


class Runner:
    def __init__(self, components: Components, store: Store, device: torch.device,
                 data_root: Path, notify: Callable[[str], None] | None = None) -> None:
        self.components, self.store, self.device, self.data_root = (
            components, store, device, data_root)
        #: one line for the user about something found and handled (a damaged checkpoint)
        self.notify = notify or (lambda message: tqdm.write(message, file=sys.stderr))
        self._datasets: dict[str, LoadedDataset] = {}
        self._eval_data: dict[tuple[str, int | None], tuple[torch.Tensor, torch.Tensor]] = {}

    def dataset(self, resolved: Resolved, plan: Plan) -> LoadedDataset:
        key = _dataset_key(resolved)
        if key not in self._datasets:
            try:
                loaded = load_dataset(self.components, resolved, self.data_root)
            except UserError as exc:
                raise UserError(f"{plan.suite.path}: datasets ({resolved.label}): {exc}") from None
            self._datasets[key] = LoadedDataset(to_device(loaded.train, self.device),
                                                loaded.test, loaded.info)
        return self._datasets[key]

    def eval_data(self, resolved: Resolved, data: LoadedDataset, max_examples: int | None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``max_examples`` test examples on the device, gathered once per dataset."""
        key = (_dataset_key(resolved), max_examples)
        if key not in self._eval_data:
            x, y = as_tensors(data.test, max_examples)
            self._eval_data[key] = (x.to(self.device), y.to(self.device))
        return self._eval_data[key]

    def execute(self, plan: Plan,
                run_cells: Callable[[Plan, RunSummary], None] | None = None) -> RunSummary:
        """Record a run around ``run_cells`` (default: every train cell here, in order; an
        executor may run them elsewhere)."""
        plugins = {info.name: {"version": info.version, "source": info.source,
                               "source_sha256": info.source_sha256}
                   for info in self.components.pm.infos.values()}
        summary = RunSummary(self.store.start_run(plan.suite.name, plan.suite.path,
                                                  plan_record(plan, self.components), plugins))
        status = "interrupted"
        try:
            (run_cells or self.run_cells)(plan, summary)
            status = "done" if summary.ok else "failed"
        except UserError:
            status = "aborted"
            raise
        finally:
            self.store.finish_run(summary.run_id, status)
        return summary

    def run_cells(self, plan: Plan, summary: RunSummary) -> None:
        for cell in tqdm(plan.train_cells, desc="cells", unit="cell", disable=None):
            self.run_cell(plan, cell, summary)

    def _note(self, summary: RunSummary, kind: str, cell_hash: str, outcome: str,
              failure: str | None = None) -> None:
        self.store.note_cell(summary.run_id, kind, cell_hash, outcome)
        if outcome == "cached":
            summary.cached += 1
        elif outcome == "computed":
            summary.computed += 1
        elif outcome == "skipped":
            summary.skipped += 1
        if failure:
            summary.failures.append(failure)

    def run_cell(self, plan: Plan, cell: TrainCell, summary: RunSummary) -> None:
        max_examples = plan.evaluation.max_examples
        batch_size = plan.evaluation.batch_size
        evals = plan.evals_of(cell)
        pending, metrics, has_clean = self._missing(plan, cell)
        finished = self.store.finished_train_cell(cell.hash)
        if finished is not None and not self._intact(cell, finished,
                                                     bool(pending or metrics or not has_clean)):
            finished = None  # forgotten with its results: all of them are to compute now
            pending, metrics, has_clean = self._missing(plan, cell)
        for e in evals:
            if e not in pending:
                self._note(summary, "eval", e.hash, "cached")
        if finished is not None and not pending and not metrics and has_clean:
            self._note(summary, "train", cell.hash, "cached")
            return
        try:
            data = self.dataset(cell.dataset, plan)
            model = self._trained_model(plan, cell, data, finished, summary)
        except UserError:
            raise
        except Exception as exc:
            self.record_failed_cell(plan, cell, describe_error(exc), summary)
            return
        x, y = self.eval_data(cell.dataset, data, max_examples)
        correct = clean_correct(model, x, y, batch_size)
        with collect_flags() as model_flags:
            if correct.any():
                check_model(model, x[correct][:batch_size], y[correct][:batch_size])
        self.store.record_clean(cell.hash, max_examples, correct.cpu(), model_flags)
        for metric in metrics:
            self._measure(cell, metric, model, x, y, data, summary)
        worst_case = plan.evaluation.mode == "worst-case"
        targets = correct
        for e in tqdm(evals, desc="attacks", leave=False, unit="attack", disable=None):
            if e in pending:
                robust = self._evaluate(e, model, x, y, targets, summary)
            else:
                robust = torch.from_numpy(unpack_bools(self.store.eval_cell(e.hash)["robust"]))
            if worst_case:
                if robust is None:  # the chain is broken: later attacks cannot run
                    for later in evals[evals.index(e) + 1:]:
                        self._note(summary, "eval", later.hash, "skipped")
                    break
                targets = targets & robust.to(targets.device)

    def _missing(self, plan: Plan, cell: TrainCell) -> tuple[list[EvalCell], list[MetricSpec],
                                                             bool]:
        """What the store lacks for this cell: eval cells, metrics, and whether the clean
        pass is stored."""
        return ([e for e in plan.evals_of(cell) if not self._eval_done(e)],
                [m for m in plan.metrics if not self._metric_done(cell, m)],
                self.store.clean(cell.hash, plan.evaluation.max_examples) is not None)

    def _intact(self, cell: TrainCell, finished: Any, loading: bool) -> bool:
        """Whether a finished cell's checkpoint is intact (fully hashed when the weights are
        about to be ``loading``). A missing or damaged one is said in one line, and the cell
        with every result computed from it is forgotten, to be recomputed now."""
        problem = self.store.checkpoint_problem(finished, full=loading)
        if problem is None:
            return True
        self.notify(f"{problem}: retraining {cell.model_label()} and recomputing its results")
        self.store.forget_train_cell(cell.hash)
        return False

    def record_failed_cell(self, plan: Plan, cell: TrainCell, error: str,
                           summary: RunSummary) -> None:
        """A train cell that could not finish: its error recorded, its pending attacks skipped."""
        self.store.record_train(cell.hash, cell.config(), cell.labels, status="failed",
                                error=error)
        self._note(summary, "train", cell.hash, "failed", f"{cell.describe()}: {error}")
        for e in plan.evals_of(cell):
            if not self._eval_done(e):
                self._note(summary, "eval", e.hash, "skipped")

    def record_lost_cell(self, plan: Plan, cell: TrainCell, error: str,
                         summary: RunSummary) -> None:
        """A train cell whose worker died: recorded as failed; the attacks stored before it
        (the worker's own notes died with it) are counted as reused."""
        for e in plan.evals_of(cell):
            if self._eval_done(e):
                self._note(summary, "eval", e.hash, "cached")
        self.record_failed_cell(plan, cell, error, summary)

    def _eval_done(self, e: EvalCell) -> bool:
        row = self.store.eval_cell(e.hash)
        return row is not None and row["status"] == "done"

    def _metric_done(self, cell: TrainCell, metric: MetricSpec) -> bool:
        row = self.store.metric(cell.hash, metric.hash)
        return row is not None and row["status"] == "done"

    def _measure(self, cell: TrainCell, metric: MetricSpec, model: torch.nn.Module,
                 x: torch.Tensor, y: torch.Tensor, data: LoadedDataset,
                 summary: RunSummary) -> None:
        """Compute one architecture metric on a trained model; a failure is recorded, not fatal."""
        started = time.perf_counter()
        try:
            measure = build_metric(self.components, metric.metric)
            values = {k: float(v) for k, v in measure(model.eval(), x, y, data.info).items()}
        except UserError:
            raise
        except Exception as exc:
            error = describe_error(exc)
            self.store.record_metric(cell.hash, metric.hash, metric.metric.label, status="failed",
                                     error=error)
            summary.failures.append(f"metric {metric.metric.label} on {cell.describe()}: {error}")
            return
        finally:
            model.zero_grad(set_to_none=True)
        self.store.record_metric(cell.hash, metric.hash, metric.metric.label, status="done",
                                 values=values, seconds=time.perf_counter() - started)

    def load_model(self, cell: TrainCell, data: LoadedDataset, checkpoint: Path,
                   sha256: str | None = None) -> torch.nn.Module:
        model = build_model(self.components, cell.architecture, data.info, self.device)
        return load_checkpoint(model, checkpoint, sha256)

    def _trained_model(self, plan: Plan, cell: TrainCell, data: LoadedDataset, finished,
                       run_summary: RunSummary) -> torch.nn.Module:
        if finished is not None:
            self._note(run_summary, "train", cell.hash, "cached")
            return self.load_model(cell, data, Path(finished["checkpoint"]),
                                   finished["checkpoint_sha256"])
        if cell.recipe is None:
            return self._pretrained_model(cell, data, run_summary)
        state_path = self.store.checkpoint_path(cell.hash, "state")
        problem, resumable = newest_intact(state_path)
        if problem is not None:
            self.notify(f"training state {state_path} {problem}: " + (
                f"resuming {cell.model_label()} from the state saved one epoch earlier"
                if resumable else f"training {cell.model_label()} from its first epoch"))
        with collect_flags() as flags:
            result = train(self.components, cell, data, self.device, state_path)
        checkpoint = self.store.checkpoint_path(cell.hash)
        digest = save_checkpoint(result.model, checkpoint)
        for which, state in (("best", result.best_state), ("last", result.last_state)):
            if state is not None:
                save_state_dict(state, self.store.checkpoint_path(cell.hash, which))
        summary = dict(result.summary)
        if result.probe is not None:  # the same probe on test examples: the generalization gap
            x, y = self.eval_data(cell.dataset, data, plan.evaluation.max_examples)
            batch = cell.recipe.recipe.batch_size
            with preserved_rng(x.device):
                correct = clean_correct(result.model, x, y, batch)
                test = run_attack(result.model, result.probe, x, y, correct, batch, PROBE_SEED)
            summary["final_test_robust"] = test.accuracy
            summary["robust_gap"] = summary["final_train_robust"] - test.accuracy
        self.store.record_train(cell.hash, cell.config(), cell.labels, status="done",
                                checkpoint=checkpoint, checkpoint_sha256=digest,
                                history=result.history, summary=summary,
                                flags=flags, seconds=result.seconds)
        self.store.drop_training_state(cell.hash)
        self._note(run_summary, "train", cell.hash, "computed")
        return result.model

    def _pretrained_model(self, cell: TrainCell, data: LoadedDataset,
                          run_summary: RunSummary) -> torch.nn.Module:
        """A model evaluated with the weights it came with: built, stored like a trained one
        (so reruns, reports and ``load_trained`` treat both alike), never trained."""
        started = time.perf_counter()
        model = build_model(self.components, cell.architecture, data.info, self.device).eval()
        checkpoint = self.store.checkpoint_path(cell.hash)
        digest = save_checkpoint(model, checkpoint)
        self.store.record_train(cell.hash, cell.config(), cell.labels, status="done",
                                checkpoint=checkpoint, checkpoint_sha256=digest,
                                seconds=time.perf_counter() - started)
        self._note(run_summary, "train", cell.hash, "computed")
        return model

    def _evaluate(self, e: EvalCell, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                  targets: torch.Tensor, summary: RunSummary) -> torch.Tensor | None:
        """Run one eval cell and record it; the per-example robust flags, or None if it failed."""
        seed = e.seed
        with collect_flags() as flags:  # kept even when the attack fails half-way
            try:
                attack = build_attack(self.components, e.attack)
                outcome = run_attack(model, attack, x, y, targets, e.batch_size, seed, e.speed,
                                     e.fp32_check)
            except UserError:
                raise
            except Exception as exc:
                outcome, error = None, describe_error(exc)
                if _no_input_gradient(exc):
                    raise_flag("zero-gradients", "the attack found no gradient path from the "
                               "input to the loss (a non-differentiable model?)")
        if outcome is None:
            self.store.record_eval(e.hash, e.train.hash, e.config(), e.attack.label,
                                   status="failed", mode=e.mode, error=error, flags=flags,
                                   seed=e.seed)
            self._note(summary, "eval", e.hash, "failed", f"{e.describe()}: {error}")
            return None
        self.store.record_eval(e.hash, e.train.hash, e.config(), e.attack.label, status="done",
                               mode=e.mode, robust=outcome.robust, norms=outcome.norms,
                               median_norm=outcome.median_norm, flags=flags,
                               seconds=outcome.seconds, seed=e.seed)
        self._note(summary, "eval", e.hash, "computed")
        return outcome.robust
