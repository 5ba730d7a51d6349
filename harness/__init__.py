"""robust-harness: adversarially train architectures and evaluate them against many attacks.

The public API — what plugins, scripts and notebooks may use — is this package's ``__all__``
(``load_model``, ``load_dataset``, ``load_trained`` and ``benchmark`` for scripts)
plus ``harness.toolkits`` (chores shared by toolkit-wrapping plugins) and ``harness.testing``
(conformance checks for plugin authors). Every other module is
engine detail and may change; ``tests/engine/test_layout.py`` keeps the built-in plugins within
the public API.

The engine, in data-flow order (each module imports only modules above it;
``commands.run`` is ``harness/commands/run.py``):

    errors               user mistakes (exit 2, one line) and broken plugin contracts
    version              the harness version (part of every cell hash)
    kinds                the component kinds, one table for registries, hooks, catalogues and CLI
    threat               threat models, eps parsing and units, the engine's budget check
    contracts            data types plugins and the engine share: DataInfo, LoadedDataset, Params…
    flags                validity flags raised while a number is computed
    seeding              seeds and RNG state kept across side computations
    nn                   Normalize and Adapted: normalization and resizing inside the model
    toolkits             public helpers for plugins that wrap a toolkit
    tomlfile             TOML reading; errors located at file and key path
    specs                pydantic models of what users write (references, presets, recipes)
    suite                the suite file
    questions            the study-questions file (analyze --questions): read, told from a suite
    registry             typed registries plugins fill: add, get with did-you-mean, list, freeze
    hookspecs            every hook and every optional method (the plugin reference, as Protocols)
    paths                where the built-in plugins, catalogues and suites live
    pluginmanager        finding and loading plugins: built-in folder, entry points, extra folders
    catalogue            registries/*.toml presets
    components           a session's plugin manager, registries and catalogue; name lookup
    cells                resolved components and the cells made of them, each content-hashed
    files                sha256 of files that can change a result, once per file version
    weights              trained weights for any architecture: found, verified, loaded strictly
    resolve              names → factories with validated params; catalogue validation
    guard                the attack contract: eval mode, frozen parameters, budget check
    build                resolved components → objects: the one place a factory is called
    checks               validation probes: data shapes, budgets, attacks and defenses built once
    plan                 suite → plan: resolve, check, lay out train and eval cells
    session              load everything a session uses, checked
    devices              device choice (CUDA, then MPS, then CPU)
    data                 datasets as device tensors or loaders
    augment              on-device crop-flip; AutoAugment, ahead in worker processes on a GPU
    schedule             learning-rate schedules
    evaluate             clean pass, attacks on the clean-correct examples, per-example outcomes
    checkpoints          checkpoint files, written atomically
    train                the training loop (a defense supplies the loss)
    store                the results database (SQLite) and checkpoint paths; resume
    runner               execute a plan cell by cell, record every outcome
    executors            where train cells run: here, or as Ray tasks
    crosscheck           two implementations of one attack on the same models
    api                  load_model, load_dataset, load_trained, benchmark: the harness from a script
    stats                intervals over seeds, paired tests, rank correlations (scipy.stats)
    matrix               the cross-attack matrix rebuilt from the database, seed by seed
    unseen               robust accuracy on the training threat (seen) against the others (unseen)
    compare              two rows on the same examples: McNemar and paired bootstrap
    analyze              architecture metrics against robust accuracy: Spearman per training group
    figures              every plot: heatmap, curves, histories, scatters, seen/unseen bars
    report               the matrix and its findings as Markdown, HTML, CSV and JSON
    findings             a study's question answered from its run: the pilots' document
    testing              conformance checks for plugin authors (public)
    pytest_plugin        the pytest plugin: a harness_case per component of your plugins
    listing              what the plugins register, indexed so list and plugins need not load them
    commands.common      what the commands share: plugin options, components, plan, store
    commands.validate    validate and schema: suite files checked, and described
    commands.run         run: plan, train, evaluate, report; --dry-run prints the plan
    commands.eval        eval: a model against attacks, through a suite written for it
    commands.lists       list and plugins, answered from the registration index
    commands.report      report: a stored run's report files rendered again
    commands.analysis    compare and analyze: statistics over stored runs
    commands.crosscheck  crosscheck: two implementations of one attack, side by side
    commands.check       check: the conformance checks run on a plugin
    cli                  the command line: the group, one-line user errors, every command registered
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from harness.version import __version__

if TYPE_CHECKING:
    from harness.api import Benchmark, benchmark, load_dataset, load_model, load_trained
    from harness.contracts import DataInfo, LoadedDataset, LocalFile, Params
    from harness.errors import ContractViolation, PluginError, UserError
    from harness.flags import raise_flag
    from harness.hookspecs import (
        Attack,
        Defense,
        Measure,
        OptionalAttackMethods,
        OptionalDefenseMethods,
        OptionalModuleMethods,
        hookimpl,
    )
    from harness.nn import Normalize, normalized
    from harness.threat import StepSize, ThreatModel, parse_eps

#: Where each public name lives. Imported on first use, so ``import harness`` stays light:
#: ``harness --help`` and the other torch-free modules do not pay for torch. The Python API
#: (``harness.api``) is among them.
_EXPORTS = {
    "harness.api": ("Benchmark", "benchmark", "load_dataset", "load_model", "load_trained"),
    "harness.contracts": ("DataInfo", "LoadedDataset", "LocalFile", "Params"),
    "harness.errors": ("ContractViolation", "PluginError", "UserError"),
    "harness.flags": ("raise_flag",),
    "harness.hookspecs": ("Attack", "Defense", "Measure", "OptionalAttackMethods",
                          "OptionalDefenseMethods", "OptionalModuleMethods", "hookimpl"),
    "harness.nn": ("Normalize", "normalized"),
    "harness.threat": ("StepSize", "ThreatModel", "parse_eps"),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})


__all__ = [
    "Attack",
    "Benchmark",
    "ContractViolation",
    "DataInfo",
    "Defense",
    "LoadedDataset",
    "LocalFile",
    "Measure",
    "Normalize",
    "OptionalAttackMethods",
    "OptionalDefenseMethods",
    "OptionalModuleMethods",
    "Params",
    "PluginError",
    "StepSize",
    "ThreatModel",
    "UserError",
    "__version__",
    "benchmark",
    "hookimpl",
    "load_dataset",
    "load_model",
    "load_trained",
    "normalized",
    "parse_eps",
    "raise_flag",
]
