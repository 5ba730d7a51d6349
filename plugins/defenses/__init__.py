"""Training methods: standard, PGD-AT (Madry et al. 2018), TRADES (Zhang et al. 2019), MART
(Wang et al. 2020), ALP (Kannan et al. 2018), Fast-AT (Wong et al. 2020), Free-AT (Shafahi et
al. 2019) and AWP (Wu et al. 2020) around PGD-AT, TRADES or MART.

A defense gets the recipe's training attack, already wrapped by the engine: it crafts in eval
mode (or BatchNorm-train mode with ``attack_bn = "train"``) with the parameters frozen, and
every batch it returns is checked against its threat model. So any registered attack under any
norm is a valid inner maximizer: "PGD-AT under l2 0.5" is ``attack = { name = "pgdl2", ... }``.
Only Fast-AT and Free-AT are linf by definition and say so when given another norm.

Loss formulas follow the authors' reference code (cited at each function), including their
numerical constants, so that numbers are comparable with the papers.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from harness import StepSize, ThreatModel, UserError, hookimpl, raise_flag

__version__ = "1.0"

AttackFn = Callable[[nn.Module, Tensor, Tensor], Tensor]
Step = Callable[..., None]

TRADES_PAIRING = ("pair with attack tpgd (PGD on this KL term: the TRADES inner maximization); "
                  "any attack (pgd, pgdl2, ...) also works")


# --- loss functions (pure: reused by AWP on its proxy model) ------------------------------------


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


# --- parameter models ---------------------------------------------------------------------------


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoParams(_Params):
    pass


class TRADESParams(_Params):
    beta: float = Field(default=6.0, ge=0, description="Weight of the KL robustness term "
                        "(1/lambda in Zhang et al. 2019; 6 on CIFAR-10).")


class MARTParams(_Params):
    beta: float = Field(default=6.0, ge=0, description="Weight of the misclassification-aware KL "
                        "term (lambda in Wang et al. 2020; 6 on CIFAR-10).")


class ALPParams(_Params):
    weight: float = Field(default=0.5, ge=0, description="Logit pairing weight (rcm --leverage 0.5).")
    clean_loss: bool = Field(default=True, description="Add CE on the clean batch (the mixed-batch "
                             "ALP of Kannan et al. and rcm); false pairs plain PGD-AT.")
    pairing: Literal["l2", "squared", "mse"] = Field(
        default="l2", description='"l2": mean ||z - z_adv||_2 (rcm); "squared": mean squared '
        'norm; "mse": mean over logits of the squared difference (Kannan et al. code).')


class FastATParams(_Params):
    collapse_drop: float = Field(
        default=0.2, gt=0, le=1, description="Flag catastrophic overfitting when the epoch's probe "
        "robust accuracy falls this much (absolute) below the best earlier epoch (Wong et al.'s "
        "early-stopping threshold is 0.2).")
    collapse_floor: float = Field(
        default=0.0, ge=0, lt=1, description="Also flag when robust accuracy falls below this "
        "after an earlier epoch reached it; 0 turns the check off.")


class FreeATParams(_Params):
    replays: int = Field(default=4, ge=1, description="m: optimizer steps per minibatch, each "
                         "also one signed-gradient step of the perturbation (Shafahi et al.: 8 "
                         "on CIFAR-10). Divide the epochs by m to keep the paper's budget.")
    step_size: StepSize = Field(default=StepSize(value=1.0, relative=True), description=(
        'Perturbation step per replay, absolute ("2/255") or relative ("eps"); the paper uses eps.'))


class AWPParams(_Params):
    inner: Literal["pgd-at", "trades", "mart"] = Field(
        default="pgd-at", description="The training loss AWP perturbs the weights against.")
    gamma: float | None = Field(
        default=None, gt=0, description="Relative size of the weight perturbation per layer. "
        "Default: 0.01 for pgd-at (AT-AWP), 0.005 for trades and mart (TRADES-AWP), the "
        "defaults of the authors' code (csdongxian/AWP).")
    beta: float = Field(default=6.0, ge=0, description="TRADES/MART beta (unused by pgd-at).")
    warmup_epochs: int = Field(default=0, ge=0, description="Epochs trained with the inner loss "
                               "alone before the weights are perturbed (rcm's and the authors' "
                               "TRADES-AWP: 10).")

    def resolved_gamma(self) -> float:
        if self.gamma is not None:
            return self.gamma
        return 0.01 if self.inner == "pgd-at" else 0.005


# --- defenses -----------------------------------------------------------------------------------


class StandardTraining:
    def loss(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(model(x), y)


class AdversarialTraining:
    """Cross-entropy on the training attack's examples (the engine crafts them in eval mode)."""

    def __init__(self, attack: AttackFn) -> None:
        self.attack = attack

    def loss(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        x_adv = self.attack(model, x, y)
        return F.cross_entropy(model(x_adv), y)


class TRADES:
    """TRADES: clean cross-entropy plus beta times the clean-to-adversarial KL."""

    def __init__(self, attack: AttackFn, beta: float) -> None:
        self.attack, self.beta = attack, beta

    def loss(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return trades_loss(model, x, self.attack(model, x, y), y, self.beta)


class MART:
    """MART: boosted cross-entropy on x_adv plus a KL term weighted by clean misclassification."""

    def __init__(self, attack: AttackFn, beta: float) -> None:
        self.attack, self.beta = attack, beta

    def loss(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return mart_loss(model, x, self.attack(model, x, y), y, self.beta)


class ALP:
    """Adversarial logit pairing: adversarial (and clean) CE plus a logit distance."""

    def __init__(self, attack: AttackFn, params: ALPParams) -> None:
        self.attack, self.params = attack, params

    def loss(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        p = self.params
        return alp_loss(model, x, self.attack(model, x, y), y, p.weight, p.clean_loss, p.pairing)


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


class FastAT(AdversarialTraining):
    """Fast-AT: PGD-AT's loss on a single random-start FGSM step (the recipe's ``ffgsm``
    attack), plus a detector of catastrophic overfitting.

    Catastrophic overfitting (Wong et al. 2020, Sec. 5) is a sudden collapse of multi-step
    robust accuracy while FGSM accuracy keeps rising. ``on_epoch_end`` reads the epoch's probe
    robust accuracy (``val_robust``, else ``train_robust``: the recipe's
    ``validation.attack``, which must be a PGD attack for this to mean anything) and raises the
    ``catastrophic-overfitting`` flag on a collapse.
    """

    def __init__(self, attack: AttackFn, params: FastATParams) -> None:
        super().__init__(attack)
        self.params = params
        self.history: list[tuple[int, float]] = []  # (epoch, probe robust accuracy)

    def on_epoch_end(self, model: nn.Module, record: dict[str, Any]) -> None:
        key = "val_robust" if "val_robust" in record else "train_robust"
        value = record.get(key)
        if value is None:
            return
        epoch = int(record.get("epoch", len(self.history) + 1))
        if self.history:
            best_epoch, best = max(self.history, key=lambda item: item[1])  # first best on ties
            floor = self.params.collapse_floor
            if best - value > self.params.collapse_drop or value < floor <= best:
                raise_flag("catastrophic-overfitting", (
                    f"epoch {epoch}: probe robust accuracy ({key}) fell to {value:.1%} from "
                    f"{best:.1%} at epoch {best_epoch}; single-step training collapsed. Evaluate "
                    'the best checkpoint (checkpoint = "best"), or lower the lr or the FGSM step'))
        self.history.append((epoch, float(value)))

    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = [(int(e), float(v)) for e, v in state["history"]]


class FreeAT:
    """Free-AT ("adversarial training for free"): each minibatch is replayed ``m`` times; one
    backward pass gives both the weight gradient (one optimizer step) and the input gradient,
    whose sign updates a perturbation delta that persists across replays and minibatches.

    The model stays in train mode throughout, as in the paper. ``steps_per_batch = m`` tells
    the engine that every batch takes m optimizer steps, so lr schedules count real steps.
    """

    def __init__(self, threat: ThreatModel, params: FreeATParams) -> None:
        self.eps = threat.eps
        self.alpha = params.step_size.absolute(threat.eps)
        self.replays = self.steps_per_batch = params.replays
        self.delta: Tensor | None = None

    def _delta_for(self, x: Tensor) -> Tensor:
        """The first len(x) rows of the persistent delta, resized when the shape changes."""
        delta = self.delta
        if delta is None or delta.shape[1:] != x.shape[1:]:
            delta = torch.zeros_like(x)
        elif len(delta) < len(x):  # a larger batch than before: new rows start at 0
            delta = torch.cat([delta, delta.new_zeros((len(x) - len(delta), *x.shape[1:]))])
        self.delta = delta.to(x.device, x.dtype)
        return self.delta[: len(x)].clone()

    def train_batch(self, model: nn.Module, x: Tensor, y: Tensor, step: Step) -> Tensor:
        delta = self._delta_for(x)
        losses = []
        for _ in range(self.replays):
            delta.requires_grad_(True)
            loss = F.cross_entropy(model((x + delta).clamp(0, 1)), y)
            step(loss)  # backward fills delta.grad from the same pass as the weight gradient
            grad = delta.grad
            delta = delta.detach()
            if grad is not None:
                delta = (delta + self.alpha * grad.sign()).clamp(-self.eps, self.eps)
            losses.append(loss.detach())
        assert self.delta is not None
        self.delta[: len(x)] = delta
        return torch.stack(losses).mean()

    def state_dict(self) -> dict[str, Any]:
        return {"delta": self.delta}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.delta = state["delta"]


class AWP:
    """Adversarial weight perturbation (Wu et al. 2020) around PGD-AT, TRADES or MART.

    Per batch: craft x_adv with the attack at the current weights w; take one ascent step of
    the training loss on a proxy copy of the model (so the model's BatchNorm statistics are
    untouched) and scale its change per layer to ``||w_l|| / ||change_l||`` (conv and linear
    weights only, as csdongxian/AWP ``diff_in_weights``); add ``gamma * v`` to the weights,
    compute the loss and its gradient there, then restore w exactly (from a copy) before the
    optimizer step, which therefore updates w with the gradient taken at w + gamma * v.
    """

    def __init__(self, attack: AttackFn, params: AWPParams) -> None:
        self.attack, self.inner, self.beta = attack, params.inner, params.beta
        self.gamma = params.resolved_gamma()
        self.warmup_epochs, self.epoch = params.warmup_epochs, 0
        self._proxy: nn.Module | None = None
        self._source: nn.Module | None = None

    def on_epoch_start(self, model: nn.Module, epoch: int) -> None:
        self.epoch = epoch  # 0-based: the weights are perturbed from epoch warmup_epochs on

    def _loss(self, model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor) -> Tensor:
        if self.inner == "trades":
            return trades_loss(model, x, x_adv, y, self.beta)
        if self.inner == "mart":
            return mart_loss(model, x, x_adv, y, self.beta)
        return F.cross_entropy(model(x_adv), y)

    @staticmethod
    def _perturbed(name: str, param: nn.Parameter) -> bool:
        return param.requires_grad and param.dim() > 1 and "weight" in name

    def _proxy_for(self, model: nn.Module) -> nn.Module:
        if self._proxy is None or self._source is not model:
            self._proxy, self._source = copy.deepcopy(model), model
        self._proxy.load_state_dict(model.state_dict())
        for p, q in zip(model.parameters(), self._proxy.parameters(), strict=True):
            q.requires_grad_(p.requires_grad)
            q.grad = None
        return self._proxy

    def perturbation(self, model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor
                     ) -> dict[str, Tensor]:
        """v per perturbed parameter: the layer-normalised ascent direction times ||w_l||."""
        proxy = self._proxy_for(model)
        proxy.train()
        named = [(n, q) for n, q in proxy.named_parameters() if self._perturbed(n, q)]
        grads = torch.autograd.grad(self._loss(proxy, x, x_adv, y), [q for _, q in named],
                                    allow_unused=True)
        weights = dict(model.named_parameters())
        with torch.no_grad():  # official: diff = (proxy after one SGD ascent step) - w, lr cancels
            return {name: weights[name].norm() / (g.norm() + 1e-20) * g
                    for (name, _), g in zip(named, grads, strict=True) if g is not None}

    def train_batch(self, model: nn.Module, x: Tensor, y: Tensor, step: Step) -> Tensor:
        x_adv = self.attack(model, x, y)
        if self.epoch < self.warmup_epochs:
            loss = self._loss(model, x, x_adv, y)
            step(loss)
            return loss.detach()
        v = self.perturbation(model, x, x_adv, y)
        params = dict(model.named_parameters())
        saved = {name: params[name].detach().clone() for name in v}
        with torch.no_grad():
            for name, direction in v.items():
                params[name].add_(direction, alpha=self.gamma)

        restored = False

        def restore() -> None:
            nonlocal restored
            with torch.no_grad():
                for name, original in saved.items():
                    params[name].copy_(original)
            restored = True

        try:
            loss = self._loss(model, x, x_adv, y)
            step(loss, before_update=restore)
        finally:
            if not restored:  # the step failed before the update: never leave w perturbed
                restore()
        return loss.detach()


# --- factories ----------------------------------------------------------------------------------


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
