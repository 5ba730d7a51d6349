"""Attacks from torchattacks 3.5: every one that applies to image classifiers, plus CW-inf.

Each registration declares the threat model the attack really respects: bounded attacks keep
every output inside the eps ball of their norm; minimum-norm attacks (CW, DeepFool, EAD, the
pixel attacks) may go further and are scored by the engine at the suite's budget in the norm
they minimise. torchattacks pins the model's device when an attack object is built, so one is
built per call (construction only stores settings); the engine handles eval mode, parameter
gradients and the budget check.

Each attack is one row of ``rows.ROWS`` (its torchattacks class, how each keyword comes from
the suite's parameters, its quirks); ``table.factory`` turns a row into the registered factory.
Modules: ``params`` (parameter models), ``rows`` (the table), ``table`` (what a row says and the
builder), ``running`` (one call under the harness contract), ``patches`` (fixed toolkit classes).

Toolkit quirks handled here (each also commented on its row or where it is handled):

- the targeted-mode setters print to stdout unless ``quiet=True``;
- APGD, APGDT, FAB, Square and AutoAttack reseed the *global* torch RNG on every call: they
  run inside ``torch.random.fork_rng`` so the rest of the evaluation keeps its own stream;
- APGDT, FAB and AutoAttack take ``n_classes`` (default 10) and JSMA hard-codes ``% 10``:
  the class count is read from the model's output width at call time, and APGDT's and FAB's
  ``n_target_classes`` (default 9) is capped at C-1;
- ``torchattacks.AutoAttack`` leaves its sub-attacks at 10 iterations: AutoAttack's 100 (the
  ``steps`` and ``queries`` parameters) are set on them after construction;
- CW's margin ``f`` is wrong for negative logits (upstream PR #168) and its atanh start freezes
  pixels at exactly 0 or 1: both fixed in a small subclass;
- SPSA's and PIFGSMPP's targeted modes never ask for their targets (they would attack towards
  the true class): the wrapper computes them and passes them as labels;
- TIFGSM, PIFGSM and PIFGSMPP hard-code 3 channels: inputs with fewer channels are padded with
  channels the model never sees (exactly equivalent, see ``running.PaddedChannels``);
- minimum-norm attacks can return NaN (DeepFool on a flat logit difference) or -1e-8 (EAD):
  non-finite examples are returned unperturbed, with a flag, and outputs are clamped to [0,1]
  (a range clamp never moves a point farther from x, so it cannot hide a budget violation).
"""

from __future__ import annotations

from harness import hookimpl

from .rows import ROWS
from .table import factory

__version__ = "1.1"  # 1.1: class counting forward in eval mode (BN statistics untouched)


@hookimpl
def harness_register_attacks(registry):
    for row in ROWS:
        registry.add(row.name, factory(row), **row.registration())
