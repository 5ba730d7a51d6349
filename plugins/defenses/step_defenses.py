"""Defenses with their own update, ``train_batch(model, x, y, step)``: Free-AT and AWP.

Each calls ``step(loss)`` itself: Free-AT once per replay of the batch, AWP once, at perturbed
weights that it restores (``before_update``) before the optimizer applies the gradient.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harness import ThreatModel

from .loss_defenses import AttackFn
from .losses import mart_loss, trades_loss
from .params import AWPParams, FreeATParams

Step = Callable[..., None]


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
