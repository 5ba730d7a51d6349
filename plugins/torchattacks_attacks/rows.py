"""The attack table: one row per registered torchattacks attack, in registration order.

Each row's quirk is commented on it; the module docstring of the package lists them all.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from harness.toolkits import IterativeParams, TargetedParams

from . import params as p
from .patches import fixed_cw_class, margin_pgd_classes
from .table import Call, Row, alpha, classes, construct, eps, keywords, norm, same


def target_classes(call: Call) -> int:
    """Target classes tried, capped at C-1: the toolkit's default of 9 indexes past the logits
    of a model with fewer than 10 classes."""
    return min(call.params.n_target_classes or call.num_classes, call.num_classes - 1)


def noise_type(call: Call) -> str:
    return "guassian" if call.params.noise == "gaussian" else "uniform"  # the toolkit's spelling


def build_pgd(row: Row, call: Call, model: nn.Module) -> Any:
    """torchattacks.PGD / PGDL2, or with ``loss = "margin"`` the same class on the CW margin
    (the CW-inf protocol); the margin classes also take ``kappa``."""
    if call.params.loss != "margin":
        return construct(row, call, model)
    margin_class = margin_pgd_classes()[row.toolkit]
    return margin_class(model, kappa=call.params.kappa, **keywords(row, call))


def build_autoattack(row: Row, call: Call, model: nn.Module) -> Any:
    """torchattacks.AutoAttack with AutoAttack's own iteration counts restored: its wrapper
    leaves the sub-attacks at 10 steps, and they read these settings at call time."""
    import torchattacks

    attack = construct(row, call, model)
    for sub in attack._autoattack.attacks:
        if isinstance(sub, torchattacks.APGD | torchattacks.APGDT | torchattacks.FAB):
            sub.steps = call.params.steps
        if isinstance(sub, torchattacks.Square):
            sub.n_queries = call.params.queries
    return attack


def dlr_classes(params: Any) -> int:
    """DLR divides by z_(1) - z_(3): 3 classes; targeted DLR reads the 4th largest logit."""
    if params.loss != "dlr":
        return 2
    return 3 if getattr(params, "targeted", "none") == "none" else 4


ITERATIVE = {"eps": eps, "alpha": alpha, "steps": "steps"}
MOMENTUM = ITERATIVE | same("decay")
DIVERSE = MOMENTUM | same("resize_rate", "diversity_prob", "random_start")
AUTO = {"norm": norm, "eps": eps, "steps": "steps", "n_restarts": "restarts", "seed": "seed"}
ITERATIVE_START = ITERATIVE | same("random_start")
PGDRS = ITERATIVE | {"noise_type": noise_type, "noise_sd": "noise_sd",
                     "noise_batch_size": "noise_samples"}
PIFGSM = {"max_epsilon": eps, "num_iter_set": "steps", "amplification": "amplification"}
EAD = same("lr", "binary_search_steps", "max_iterations", "abort_early", "initial_const", "beta")
STEPS2 = {"steps": 2}
LINF, L2, LINF_L2 = ("linf",), ("l2",), ("linf", "l2")

ROWS: tuple[Row, ...] = (
    # --- linf, bounded: the FGSM family ---
    Row("fgsm", "FGSM", TargetedParams, LINF, {"eps": eps},
        description="torchattacks.FGSM: one signed-gradient step of size eps (Goodfellow et al. 2015)"),
    Row("bim", "BIM", p.IterativeTargeted, LINF, ITERATIVE, test_params=STEPS2,
        description="torchattacks.BIM: iterative FGSM without random start (Kurakin et al. 2017)"),
    Row("rfgsm", "RFGSM", p.IterativeTargeted, LINF, ITERATIVE, test_params=STEPS2,
        description="torchattacks.RFGSM: random signed step, then FGSM steps (Tramer et al. 2018)"),
    Row("ffgsm", "FFGSM", p.FFGSMParams, LINF, {"eps": eps, "alpha": alpha},
        description="torchattacks.FFGSM: uniform random start + one FGSM step (Wong et al. 2020)"),
    Row("mifgsm", "MIFGSM", p.MIFGSMParams, LINF, MOMENTUM, test_params=STEPS2,
        description="torchattacks.MIFGSM: momentum iterative FGSM, MIM (Dong et al. 2018)"),
    Row("difgsm", "DIFGSM", p.DIFGSMParams, LINF, DIVERSE, test_params=STEPS2,
        description="torchattacks.DIFGSM: input-diversity (resize+pad) iterative FGSM (Xie et al. "
                    "2019)"),
    # depthwise kernels hard-code 3 channels (so do PIFGSM's and PIFGSMPP's)
    Row("tifgsm", "TIFGSM", p.TIFGSMParams, LINF,
        DIVERSE | {"kernel_name": "kernel"} | same("len_kernel", "nsig"), three_channels=True,
        test_params={"steps": 2, "len_kernel": 3},
        description="torchattacks.TIFGSM: translation-invariant DI-FGSM (Dong et al. 2019); <=3 "
                    "channels"),
    Row("nifgsm", "NIFGSM", p.MIFGSMParams, LINF, MOMENTUM, test_params=STEPS2,
        description="torchattacks.NIFGSM: Nesterov momentum iterative FGSM (Lin et al. 2020)"),
    Row("sinifgsm", "SINIFGSM", p.SINIFGSMParams, LINF, MOMENTUM | {"m": "scales"},
        test_params={"steps": 2, "scales": 2},
        description="torchattacks.SINIFGSM: scale-invariant NI-FGSM (Lin et al. 2020)"),
    Row("vmifgsm", "VMIFGSM", p.VMIFGSMParams, LINF, MOMENTUM | {"N": "samples", "beta": "beta"},
        test_params={"steps": 2, "samples": 2},
        description="torchattacks.VMIFGSM: variance-tuned MI-FGSM (Wang & He 2021)"),
    Row("vnifgsm", "VNIFGSM", p.VMIFGSMParams, LINF, MOMENTUM | {"N": "samples", "beta": "beta"},
        test_params={"steps": 2, "samples": 2},
        description="torchattacks.VNIFGSM: variance-tuned NI-FGSM (Wang & He 2021)"),
    Row("pifgsm", "PIFGSM", p.PIFGSMParams, LINF, PIFGSM, three_channels=True, test_params=STEPS2,
        description="torchattacks.PIFGSM: patch-wise iterative FGSM (Gao et al. 2020); <=3 channels"),
    # like SPSA, PIFGSMPP's forward never asks for its targets: computed here, passed as labels
    Row("pifgsmpp", "PIFGSMPP", p.PIFGSMPPParams, LINF, PIFGSM | same("project_factor"),
        three_channels=True, targets_as_labels=True, test_params=STEPS2,
        description="torchattacks.PIFGSMPP: patch-wise++ iterative FGSM (Gao et al. 2021); <=3 "
                    "channels"),
    # --- PGD family ---
    Row("pgd", "PGD", p.PGDParams, LINF, ITERATIVE_START, build=build_pgd, test_params=STEPS2,
        description='torchattacks.PGD: PGD in the linf ball, uniform random start; loss = "margin" '
                    "is CW-inf"),
    Row("pgdl2", "PGDL2", p.PGDParams, L2, ITERATIVE_START, build=build_pgd, test_params=STEPS2,
        description="torchattacks.PGDL2: PGD in the l2 ball (Madry et al. 2018)"),
    Row("tpgd", "TPGD", IterativeParams, LINF, ITERATIVE, test_params=STEPS2,
        description="torchattacks.TPGD: PGD on the TRADES KL loss (Zhang et al. 2019)"),
    Row("eotpgd", "EOTPGD", p.EOTPGDParams, LINF, ITERATIVE | same("eot_iter", "random_start"),
        test_params=STEPS2,
        description="torchattacks.EOTPGD: PGD with gradients averaged over eot_iter passes "
                    "(Athalye et al. 2018)"),
    Row("upgd", "UPGD", p.UPGDParams, LINF, ITERATIVE_START | same("loss", "decay", "eot_iter"),
        min_classes=dlr_classes, test_params=STEPS2,
        description="torchattacks.UPGD: PGD with momentum, CE or DLR loss and EOT"),
    Row("jitter", "Jitter", p.JitterParams, LINF, ITERATIVE_START | same("scale", "std"), test_params=STEPS2,
        description="torchattacks.Jitter: PGD on a jittered softmax loss (Schwinn et al. 2021)"),
    Row("pgdrs", "PGDRS", p.PGDRSParams, LINF, PGDRS, test_params={"steps": 2, "noise_samples": 2},
        description="torchattacks.PGDRS: PGD on a noise-smoothed classifier (Salman et al. 2019)"),
    Row("pgdrsl2", "PGDRSL2", p.PGDRSParams, L2, PGDRS,
        test_params={"steps": 2, "noise_samples": 2},
        description="torchattacks.PGDRSL2: l2 PGD on a noise-smoothed classifier (Salman et al. "
                    "2019)"),
    # --- AutoAttack components (Croce & Hein 2020): they reseed the global torch RNG ---
    Row("apgd", "APGD", p.APGDParams, LINF_L2, AUTO | same("loss", "eot_iter", "rho"),
        reseeds=True, min_classes=dlr_classes, test_params={"steps": 3},
        description="torchattacks.APGD: auto-PGD, CE or DLR loss; returns x where it fails"),
    # the targeted DLR loss reads the 4th largest logit
    Row("apgdt", "APGDT", p.APGDTParams, LINF_L2,
        AUTO | same("eot_iter", "rho") | {"n_classes": classes},
        attributes={"n_target_classes": target_classes}, reseeds=True, needs_classes=True,
        min_classes=4, test_params={"steps": 3},
        description="torchattacks.APGDT: targeted auto-PGD on the DLR loss, top target classes"),
    Row("fab", "FAB", p.FABParams, LINF_L2,
        AUTO | same("alpha_max", "eta", "beta", "multi_targeted") | {"n_classes": classes},
        attributes={"n_target_classes": target_classes}, reseeds=True, needs_classes=True,
        test_params={"steps": 3},
        description="torchattacks.FAB: fast adaptive boundary, keeps only points within eps"),
    Row("square", "Square", p.SquareParams, LINF_L2,
        {"norm": norm, "eps": eps, "n_queries": "queries", "n_restarts": "restarts",
         "p_init": "p_init", "loss": "loss", "resc_schedule": "rescale_schedule", "seed": "seed"},
        reseeds=True, black_box=True, test_params={"queries": 100},
        description="torchattacks.Square: score-based random-search square attack (Andriushchenko "
                    "et al. 2020)"),
    # DLR needs 3 classes (rand), targeted DLR 4 (standard, plus)
    Row("autoattack-ta", "AutoAttack", p.AutoAttackParams, LINF_L2,
        {"norm": norm, "eps": eps, "version": "version", "n_classes": classes, "seed": "seed"},
        build=build_autoattack, reseeds=True, needs_classes=True,
        min_classes=lambda params: 3 if params.version == "rand" else 4,
        test_params={"steps": 2, "queries": 10},
        description="torchattacks.AutoAttack (APGD-CE, APGD-T, FAB-T, Square) at AutoAttack's "
                    "100 iterations"),
    # --- gradient-free ---
    # SPSA's forward never asks for its targets: they are computed here and passed as labels
    Row("spsa", "SPSA", p.SPSAParams, LINF,
        {"eps": eps, "delta": "delta", "lr": "lr", "nb_iter": "steps", "nb_sample": "samples",
         "max_batch_size": "max_batch_size"}, targets_as_labels=True, black_box=True,
        test_params={"steps": 2, "samples": 8, "max_batch_size": 8},
        description="torchattacks.SPSA: gradient-free finite-difference Adam (Uesato et al. 2018)"),
    # --- minimum-norm: scored at the suite's budget in the norm they minimise ---
    Row("cw", fixed_cw_class, p.CWParams, L2, same("c", "kappa", "steps", "lr"),
        minimum_norm=True, test_params={"steps": 5},
        description="torchattacks.CW: Carlini-Wagner l2 (fixed c, margin bug fixed); minimum-norm"),
    Row("deepfool", "DeepFool", p.DeepFoolParams, L2, same("steps", "overshoot"),
        minimum_norm=True, test_params={"steps": 3},
        description="torchattacks.DeepFool: l2 minimal perturbation (Moosavi-Dezfooli et al. 2016)"),
    Row("eadl1", "EADL1", p.EADParams, ("l1",), EAD, minimum_norm=True,
        test_params={"binary_search_steps": 2, "max_iterations": 10},
        description="torchattacks.EADL1: elastic-net attack, l1 decision rule (Chen et al. 2018)"),
    Row("eaden", "EADEN", p.EADParams, ("l1", "l2"), EAD, minimum_norm=True,
        test_params={"binary_search_steps": 2, "max_iterations": 10},
        description="torchattacks.EADEN: elastic-net attack, elastic-net decision rule (Chen et al. "
                    "2018)"),
    Row("sparsefool", "SparseFool", p.SparseFoolParams, ("l0",), same("steps", "lam", "overshoot"),
        minimum_norm=True, test_params=STEPS2,
        description="torchattacks.SparseFool: sparse l0 attack via DeepFool (Modas et al. 2019)"),
    # always a targeted mode: the toolkit's own untargeted default is (y + 1) % 10, which
    # indexes past the logits of a model with fewer than 10 classes
    Row("jsma", "JSMA", p.JSMAParams, ("l0",), same("theta", "gamma"), minimum_norm=True,
        test_params={"gamma": 0.05},
        description="torchattacks.JSMA: Jacobian saliency map, targeted l0 (Papernot et al. 2016)"),
    # differential evolution over pixel positions and values (NumPy's global RNG)
    Row("onepixel", "OnePixel", p.OnePixelParams, ("l0",),
        same("pixels", "steps", "popsize", "inf_batch"), minimum_norm=True, black_box=True,
        test_params={"steps": 2, "popsize": 2},
        description="torchattacks.OnePixel: differential evolution on a few pixels (Su et al. 2019)"),
    # moves patches of pixels around (NumPy's global RNG); update_each_iteration is not offered:
    # the toolkit asserts a batch of one for it
    Row("pixle", "Pixle", p.PixleParams, ("l0",),
        same("x_dimensions", "y_dimensions", "pixel_mapping", "restarts", "max_iterations"),
        minimum_norm=True, black_box=True, test_params={"restarts": 2, "max_iterations": 2},
        description="torchattacks.Pixle: pixel rearrangement random search (Pomponi et al. 2022)"),
)
