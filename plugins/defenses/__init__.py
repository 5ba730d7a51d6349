"""Training methods: standard, PGD-AT (Madry et al. 2018), TRADES (Zhang et al. 2019), MART
(Wang et al. 2020), ALP (Kannan et al. 2018), Fast-AT (Wong et al. 2020), Free-AT (Shafahi et
al. 2019) and AWP (Wu et al. 2020) around PGD-AT, TRADES or MART.

A defense gets the recipe's training attack, already wrapped by the engine: it crafts in eval
mode (or BatchNorm-train mode with ``attack_bn = "train"``) with the parameters frozen, and
every batch it returns is checked against its threat model. So any registered attack under any
norm is a valid inner maximizer: "PGD-AT under l2 0.5" is ``attack = { name = "pgdl2", ... }``.
Only Fast-AT and Free-AT are linf by definition and say so when given another norm.

Where things are: ``losses`` (the loss functions, as the authors' reference code computes them),
``params`` (the parameter models), ``loss_defenses`` (those that only define a loss: standard,
PGD-AT, TRADES, MART, ALP, Fast-AT) and ``step_defenses`` (those that take the training step
themselves: Free-AT, AWP). The factories here check what a defense needs from the recipe's attack.
"""

from __future__ import annotations

from typing import Any

from harness import ThreatModel, UserError, hookimpl

from .loss_defenses import ALP, MART, TRADES, AdversarialTraining, AttackFn, FastAT, StandardTraining
from .params import ALPParams, AWPParams, FastATParams, FreeATParams, MARTParams, NoParams, TRADESParams
from .step_defenses import AWP, FreeAT

__version__ = "1.0"

TRADES_PAIRING = ("pair with attack tpgd (PGD on this KL term: the TRADES inner maximization); "
                  "any attack (pgd, pgdl2, ...) also works")


def _threat(attack: Any, defense: str) -> ThreatModel:
    threat = getattr(attack, "threat", None)
    if not isinstance(threat, ThreatModel):
        raise UserError(f"defense {defense!r} needs the recipe's attack for its threat model; "
                        'add attack = { name = "ffgsm", norm = "linf", eps = "8/255" }')
    return threat


def _require_linf(attack: Any, defense: str) -> ThreatModel:
    """Fast-AT and Free-AT take signed-gradient steps in a box: they are linf methods."""
    threat = _threat(attack, defense)
    if threat.norm != "linf":
        raise UserError(f"defense {defense!r} is defined for linf only (signed-gradient steps "
                        f"clipped to a box), but the recipe's attack is {threat.describe()}; use "
                        'norm = "linf", or pgd-at/trades/mart/alp for other norms')
    return threat


def fast_at(params: FastATParams, attack: AttackFn) -> FastAT:
    _require_linf(attack, "fast-at")
    return FastAT(attack, params)


def free_at(params: FreeATParams, attack: AttackFn) -> FreeAT:
    return FreeAT(_require_linf(attack, "free-at"), params)


@hookimpl
def harness_register_defenses(registry):
    add = registry.add
    add("standard", lambda params, attack: StandardTraining(), params=NoParams,
        description="cross-entropy on clean examples")
    add("pgd-at", lambda params, attack: AdversarialTraining(attack), params=NoParams,
        needs_attack=True,
        description="Madry PGD-AT: cross-entropy on the training attack's examples")
    add("trades", lambda params, attack: TRADES(attack, params.beta), params=TRADESParams,
        needs_attack=True, test_params={"beta": 6.0},
        description=f"TRADES (Zhang et al. 2019): CE(x) + beta*KL(p(x)||p(x_adv)); {TRADES_PAIRING}")
    add("mart", lambda params, attack: MART(attack, params.beta), params=MARTParams,
        needs_attack=True, test_params={"beta": 6.0},
        description="MART (Wang et al. 2020): boosted CE on x_adv + beta*KL(p(x)||p(x_adv))*(1-p_y(x)); "
                    "pair with a CE attack such as pgd")
    add("alp", lambda params, attack: ALP(attack, params), params=ALPParams,
        needs_attack=True, test_params={"weight": 0.5},
        description="adversarial logit pairing (Kannan et al. 2018) as rcm: CE(x) + CE(x_adv) "
                    "+ weight*mean||z(x) - z(x_adv)||_2")
    add("fast-at", fast_at, params=FastATParams, needs_attack=True, test_params={},
        description="Fast-AT (Wong et al. 2020): CE on one random-start FGSM step (attack ffgsm, "
                    "linf) with schedule = \"cyclic\"; flags catastrophic overfitting from the "
                    "validation PGD probe (set validation = { attack = \"pgd...\" })")
    add("free-at", free_at, params=FreeATParams, needs_attack=True, test_params={"replays": 2},
        description="Free-AT (Shafahi et al. 2019): each batch replayed m times, one step each, "
                    "delta carried over (linf; the attack only sets the threat; divide epochs by m)")
    add("awp", lambda params, attack: AWP(attack, params), params=AWPParams, needs_attack=True,
        test_params={"inner": "pgd-at"},
        description="AWP (Wu et al. 2020): PGD-AT, TRADES or MART loss at layer-wise "
                    "adversarially perturbed weights, restored before each update")
