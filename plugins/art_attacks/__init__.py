"""Attacks from the Adversarial Robustness Toolbox (ART 1.20, import ``art``), suffixed ``-art``.

Each registration declares the threat model the attack really respects: bounded attacks keep
every output inside the eps ball of the norms they are registered for; minimum-norm attacks
(CW, EAD, DeepFool, NewtonFool, JSMA, HopSkipJump, Boundary, SimBA) may go further and are
scored by the engine at the suite's budget in the norm they minimise. The engine handles eval
mode, parameter gradients and the budget check; this plugin turns torch batches into ART's
numpy calls and back.

Each attack is one row of ``rows.ROWS`` (its ART class, how each keyword comes from the suite's
parameters, its quirks); ``table.factory`` turns a row into the registered factory. The
parameters keep the harness's names (``steps`` is ART's ``max_iter``, ``step_size`` its
``eps_step``; each row says which keyword each becomes). Modules: ``params`` (parameter
models), ``rows`` (the table), ``table`` (what a row says and the builder), ``running`` (one
call under the harness contract), ``view`` (the model as ART sees it).

The model is wrapped in a ``PyTorchClassifier`` once per model (cached by model, without keeping
the model alive) with ``clip_values=(0, 1)`` and ``preprocessing=(0, 1)``: inputs are [0,1]
images and normalization happens inside the model. The class count comes from the model's output
width (one forward), the input shape from the batch, the device from the model. The ART attack
object is likewise built once per model and reused for every batch, as ART intends.

Toolkit quirks handled here (each also commented on its row or where it is handled):

- ART computes in numpy float32 and ``ProjectedGradientDescentPyTorch`` crashes on float64
  input: batches go in as float32 numpy and come back as a tensor of the input's dtype/device;
- ART calls ``model.train(False)`` before every prediction and gradient and never restores the
  mode, and runs the children of an ``nn.Sequential`` one by one instead of calling ``forward``
  (bypassing a subclass's forward and the container's hooks): ART wraps a small module that
  calls the model (so ``forward`` and hooks run) and ignores ``train()``, leaving the modes to
  the engine (eval for evaluation; a training recipe may deliberately craft in train mode);
- ``PyTorchClassifier`` moves the model to ``cuda:<current device>``: it is built with the
  model's own CUDA device current; ART has no MPS support, so other devices are refused;
- progress bars (``verbose=True`` by default, e.g. PGD's tqdm bar) are off;
- ``batch_size`` defaults to 128 everywhere (ART's own defaults are 32, or 1 for CW, DeepFool,
  EAD, JSMA, NewtonFool, which makes them loop example by example);
- PGD's default is no random start (``num_random_init=0``); here ``random_start`` defaults to
  True as in Madry et al. (and the torchattacks plugin), and ``random_start = false`` gives ART's
  behaviour;
- ART draws its randomness (random starts, Square, HopSkipJump, Boundary, SimBA, random targets)
  from the *global* NumPy and ``random`` streams: the harness seeds them before every attack
  run, and an explicit ``seed`` reseeds them for each call and restores them afterwards;
- HopSkipJump and BoundaryAttack draw their starting points from a fresh, OS-seeded
  ``np.random.RandomState()`` (two runs differ whatever the seed): the same search runs here on
  the seeded global stream and is passed to ART as ``x_adv_init``;
- ``BoundaryAttack`` is targeted by default: it is run untargeted;
- ART projects onto l1/l2 balls in float32 by rescaling; in 3072 dimensions the norm lands up
  to a few 1e-6 above eps (seen: 40.0001 at eps 40), past the engine's 1e-6 tolerance: such
  float-rounding excesses (at most 1e-4 relative) are projected away in float64;
- ``SquareAttack`` accepts ``norm=1`` but has no l1 branch (it returns x unchanged): l1 is not
  registered; its l2 and linf branches are. Its l2 initialisation is empty (NaN, skipped) on
  inputs under 10 pixels high: flagged;
- ``CarliniLInfMethod`` restarts every (tau, c) round from x with ``steps`` Adam steps of ``lr``
  in tanh space, so it cannot move a pixel by more than about ``steps * lr / 2`` (0.05 at ART's
  defaults), and loops example by example: it is registered with ART's defaults but is slow and
  weak (on digits, 4% broken at linf 0.1 where PGD breaks 46%);
- SimBA and NewtonFool are defined on class probabilities (SimBA refuses logits): they see the
  softmax of the model's logits; SimBA takes one example at a time (``batch_size=1``);
- APGD's DLR loss reads the third largest logit: it needs 3 classes;
- ``AutoConjugateGradient`` never applies the sign in its linf step (it computes
  ``np.sign(cgradk)`` into an unused variable): linf is not registered, l2 and l1 are;
- outputs pass a range/finiteness filter: non-finite examples are returned unperturbed with a
  flag, values are clamped to [0,1] (a range clamp never moves a point farther from x, so it
  cannot hide a budget violation).

Not registered, and why: ``SpatialTransformation`` (rotations and translations are not small in
any lp norm: a one-pixel shift is already an linf change of up to 1, so scored at any lp budget
the column would read "robust" everywhere; its threat model is a rotation/translation grid),
``Wasserstein`` (bounded in Wasserstein distance, and it grows its ball by ``eps_factor`` during
the run), ``CompositeAdversarialAttackPyTorch`` (semantic hue/saturation/rotation changes),
``AutoAttack`` (ART's needs the ``multiprocess`` package, not installed; the pyautoattack plugin
provides AutoAttack), ``BrendelBethgeAttack`` (needs ``numba``, not installed), Pixel/Threshold
attacks (per-image evolution strategies on a 0-255 threshold; CMA-ES needs ``cma``), and the
universal, patch, audio, video, tabular and detection attacks, which are not per-example image
classifier evasion attacks.
"""

from __future__ import annotations

from harness import hookimpl

from .rows import ROWS
from .table import factory

__version__ = "1.0"


@hookimpl
def harness_register_attacks(registry):
    for row in ROWS:
        registry.add(row.name, factory(row), **row.registration())
