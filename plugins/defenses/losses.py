"""The training losses, pure functions of (model, x, x_adv, y): the defenses call them, and AWP
calls them on its proxy model too.

Formulas follow the authors' reference code (cited at each function), including their
numerical constants, so that numbers are comparable with the papers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def trades_loss(model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor, beta: float) -> Tensor:
    """CE(f(x), y) + beta * KL(softmax f(x) || softmax f(x_adv)), KL averaged over the batch.

    As yaodongyu/TRADES trades.py: the clean distribution is the KL target and is not
    detached, so the gradient flows through both forwards (both in train mode).
    """
    logits = model(x)
    logits_adv = model(x_adv)
    kl = F.kl_div(F.log_softmax(logits_adv, dim=1), F.softmax(logits, dim=1), reduction="batchmean")
    return F.cross_entropy(logits, y) + beta * kl


def mart_loss(model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor, beta: float) -> Tensor:
    """MART (Wang et al. 2020, eq. 9): BCE(p(x_adv), y) + beta * KL(p(x) || p(x_adv)) * (1 - p_y(x)).

    BCE = -log p_y(x_adv) - log(1 - max_{k != y} p_k(x_adv)) is the "boosted" cross-entropy;
    the KL term is weighted per example by how badly the clean example is classified. The
    stabilising constants (1.0001, 1e-12, 1.0000001) are those of the authors' code
    (YisenWang/MART mart.py) so results match it.
    """
    logits = model(x)
    logits_adv = model(x_adv)
    probs_adv = F.softmax(logits_adv, dim=1)
    top2 = probs_adv.topk(2, dim=1).indices
    runner_up = torch.where(top2[:, 0] == y, top2[:, 1], top2[:, 0])  # most likely wrong class
    bce = F.cross_entropy(logits_adv, y) + F.nll_loss(torch.log(1.0001 - probs_adv + 1e-12),
                                                      runner_up)
    probs = F.softmax(logits, dim=1)
    p_true = probs.gather(1, y[:, None]).squeeze(1)
    kl = F.kl_div(torch.log(probs_adv + 1e-12), probs, reduction="none").sum(dim=1)
    return bce + beta * (kl * (1.0000001 - p_true)).mean()


def alp_loss(model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor, weight: float,
             clean_loss: bool, pairing: str) -> Tensor:
    """[CE(f(x), y)] + CE(f(x_adv), y) + weight * d(f(x), f(x_adv)) on the logits.

    ``pairing``: "l2" = mean over examples of ||z - z_adv||_2 (rcm's ALP, via its
    ``lploss``); "squared" = mean of ||z - z_adv||_2^2; "mse" = mean over examples and logits of
    (z - z_adv)^2 (Kannan et al.'s TensorFlow code, ``mean_squared_error``).
    """
    logits = model(x)
    logits_adv = model(x_adv)
    diff = (logits - logits_adv).flatten(1)
    if pairing == "l2":
        pair = diff.norm(dim=1).mean()
    elif pairing == "squared":
        pair = diff.pow(2).sum(dim=1).mean()
    else:
        pair = diff.pow(2).mean()
    loss = F.cross_entropy(logits_adv, y) + weight * pair
    return loss + F.cross_entropy(logits, y) if clean_loss else loss
