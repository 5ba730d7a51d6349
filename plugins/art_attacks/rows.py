"""The attack table: one row per registered ART attack, in registration order.

Each row's quirk is commented on it; the module docstring of the package lists them all.
"""

from __future__ import annotations

from typing import Any

from . import params as p
from .running import DecisionBasedAttack, SquareArtAttack
from .table import Call, Row, alpha, eps, norm, same, targeted


def random_inits(call: Call) -> int:
    return call.params.random_inits()


def initial_step(call: Call) -> float:
    return call.params.step_size.absolute(call.threat.eps)


def loss_type(call: Call) -> str:
    return "cross_entropy" if call.params.loss == "ce" else "difference_logits_ratio"


def dlr_classes(params: Any) -> int:
    """DLR divides by z_(1) - z_(3): 3 classes."""
    return 3 if params.loss == "dlr" else 2


#: ART's progress bars are on by default (FastGradientMethod has none, and no verbose).
BATCHED = {"batch_size": "batch_size", "verbose": False}
ITERATIVE = {"eps": eps, "eps_step": alpha, "max_iter": "steps", "targeted": targeted} | BATCHED
AUTO = {"norm": norm, "eps": eps, "eps_step": initial_step, "max_iter": "steps",
        "targeted": targeted, "nb_random_init": "restarts", "loss_type": loss_type} | BATCHED
CARLINI = {"confidence": "confidence", "targeted": targeted, "learning_rate": "lr",
           "max_iter": "steps", "initial_const": "initial_const"} | BATCHED
ALL, LINF_L2 = ("linf", "l2", "l1"), ("linf", "l2")

ROWS: tuple[Row, ...] = (
    # --- bounded, gradient-based ---
    Row("fgsm-art", "FastGradientMethod", p.FGSMParams, ALL,
        {"norm": norm, "eps": eps, "eps_step": eps, "targeted": targeted,
         "num_random_init": lambda call: int(call.params.random_start),
         "batch_size": "batch_size"},
        description="ART FastGradientMethod: one gradient step of size eps (l1: the single "
                    "largest-gradient coordinate)"),
    # ART's own default is no random start (num_random_init=0); random_start defaults to True
    Row("pgd-art", "ProjectedGradientDescentPyTorch", p.PGDParams, ALL,
        ITERATIVE | {"norm": norm, "num_random_init": random_inits}, test_params={"steps": 2},
        description="ART ProjectedGradientDescentPyTorch; l1 steps one coordinate at a time "
                    "(Liu et al. 2023 use it for PGD-L1)"),
    # BIM dispatches to ProjectedGradientDescentPyTorch (linf, no random start)
    Row("bim-art", "BasicIterativeMethod", p.BIMParams, ("linf",), ITERATIVE,
        test_params={"steps": 2},
        description="ART BasicIterativeMethod: iterative FGSM, no random start (Kurakin et al. "
                    "2017)"),
    # MIM dispatches to ProjectedGradientDescentPyTorch with momentum (no random start)
    Row("mim-art", "MomentumIterativeMethod", p.MIMParams, LINF_L2,
        ITERATIVE | {"norm": norm, "decay": "decay"}, test_params={"steps": 2},
        description="ART MomentumIterativeMethod: MI-FGSM (Dong et al. 2018)"),
    Row("apgd-art", "AutoProjectedGradientDescent", p.APGDParams, ALL, AUTO,
        min_classes=dlr_classes, test_params={"steps": 3},
        description="ART AutoProjectedGradientDescent (Croce & Hein 2020), CE or DLR loss; returns x "
                    "where it fails"),
    # not linf: ART 1.20 computes sign(direction) for linf but then steps along the raw direction
    # (``grad = np.sign(cgradk)`` is never used), so linf ACG barely moves (3% fooled on digits
    # where APGD fools 48%); its l2 and l1 branches normalise correctly
    Row("acg-art", "AutoConjugateGradient", p.APGDParams, ("l2", "l1"), AUTO,
        min_classes=dlr_classes, test_params={"steps": 3},
        description="ART AutoConjugateGradient: APGD with conjugate directions (Yamamura et al. "
                    "2022); l2, l1"),
    # --- bounded, score-based black box ---
    # no l1: ART's SquareAttack accepts norm=1 but has no l1 branch (it returns x unchanged);
    # its l2 initialisation is empty on inputs under 10 pixels high (SquareArtAttack flags it)
    Row("square-art", "SquareAttack", p.SquareParams, LINF_L2,
        {"norm": norm, "max_iter": "queries", "eps": eps, "p_init": "p_init",
         "nb_restarts": "restarts"} | BATCHED,
        runner=SquareArtAttack, black_box=True, test_params={"queries": 20},
        description="ART SquareAttack: score-based random search (Andriushchenko et al. 2020)"),
    # --- minimum-norm: scored at the suite's budget in the norm they minimise ---
    Row("cw-l2-art", "CarliniL2Method", p.CWL2Params, ("l2",),
        CARLINI | same("binary_search_steps", "max_halving", "max_doubling"), minimum_norm=True,
        test_params={"binary_search_steps": 2, "steps": 3},
        description="ART CarliniL2Method: Carlini-Wagner l2 with binary search over c; minimum-norm"),
    # each (tau, c) round restarts from x: a pixel moves at most about steps * lr / 2
    Row("cw-linf-art", "CarliniLInfMethod", p.CWLinfParams, ("linf",),
        CARLINI | same("decrease_factor", "largest_const", "const_factor"), minimum_norm=True,
        test_params={"steps": 2, "decrease_factor": 0.5, "initial_const": 0.1,
                     "largest_const": 1.0, "const_factor": 4.0},
        description="ART CarliniLInfMethod: Carlini-Wagner linf (shrinking tau); minimum-norm; per "
                    "example, slow, and weak at ART's defaults (see the plugin notes)"),
    Row("ead-art", "ElasticNet", p.EADParams, ("l1", "l2"),
        CARLINI | same("binary_search_steps", "beta", "decision_rule"), minimum_norm=True,
        test_params={"binary_search_steps": 2, "steps": 5},
        description="ART ElasticNet: EAD elastic-net attack (Chen et al. 2018); minimum-norm"),
    Row("deepfool-art", "DeepFool", p.DeepFoolParams, ("l2",),
        {"max_iter": "steps", "epsilon": "overshoot", "nb_grads": "nb_grads"} | BATCHED,
        minimum_norm=True, test_params={"steps": 3},
        description="ART DeepFool: l2 minimal perturbation (Moosavi-Dezfooli et al. 2016)"),
    # NewtonFool's step uses the class probability (its theta is min(eta*|x|, F_y - 1/K))
    Row("newtonfool-art", "NewtonFool", p.NewtonFoolParams, ("l2",),
        {"max_iter": "steps", "eta": "eta"} | BATCHED, probabilities=True, minimum_norm=True,
        test_params={"steps": 3},
        description="ART NewtonFool: Newton steps on the class probability (Jang et al. 2017)"),
    # the labels passed to ART are the targets (JSMA is targeted)
    Row("jsma-art", "SaliencyMapMethod", p.JSMAParams, ("l0",), same("theta", "gamma") | BATCHED,
        minimum_norm=True, test_params={"gamma": 0.1},
        description="ART SaliencyMapMethod: targeted JSMA, few features changed (Papernot et al. "
                    "2016)"),
    # --- minimum-norm, black box (decision- or score-based) ---
    # starting points from the seeded global stream (ART's are OS-seeded), then ART's own binary
    # search towards x
    Row("hopskipjump-art", "HopSkipJump", p.HopSkipJumpParams, ("l2", "linf"),
        {"targeted": False, "norm": norm, "max_iter": "steps"}
        | same("max_eval", "init_eval", "init_size") | BATCHED,
        runner=DecisionBasedAttack, options={"init_size": "init_size", "binary_search": True},
        minimum_norm=True, black_box=True,
        test_params={"steps": 2, "max_eval": 20, "init_eval": 5, "init_size": 10},
        description="ART HopSkipJump: decision-based, labels only (Chen et al. 2020); minimum-norm"),
    # ART's BoundaryAttack defaults to targeted=True; starting points as for HopSkipJump
    Row("boundary-art", "BoundaryAttack", p.BoundaryParams, ("l2",),
        {"targeted": False, "max_iter": "steps"}
        | same("delta", "epsilon", "step_adapt", "num_trial", "sample_size", "init_size") | BATCHED,
        runner=DecisionBasedAttack, options={"init_size": "init_size", "binary_search": False},
        minimum_norm=True, black_box=True,
        test_params={"steps": 3, "num_trial": 3, "sample_size": 3, "init_size": 10},
        description="ART BoundaryAttack: decision-based random walk (Brendel et al. 2018); "
                    "minimum-norm"),
    # SimBA refuses logits (it climbs down the probability of the true class) and handles one
    # example at a time (batch_size must be 1)
    Row("simba-art", "SimBA", p.SimBAParams, ("l2",),
        {"max_iter": "steps", "epsilon": "step_size", "targeted": targeted, "batch_size": 1,
         "verbose": False} | same("attack", "order", "freq_dim", "stride"),
        probabilities=True, minimum_norm=True, black_box=True, test_params={"steps": 20},
        description="ART SimBA: score-based ±step along DCT/pixel directions until fooled (Guo et al. "
                    "2019); l2 grows with the steps taken"),
)
