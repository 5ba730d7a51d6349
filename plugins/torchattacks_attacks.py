"""Attacks from torchattacks: FGSM, PGD (Linf) and PGD-L2.

torchattacks fixes the device when an attack object is built, so one is built per call
(construction only stores settings); the engine handles eval mode, gradients and the budget.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from harness import StepSize, ThreatModel, hookimpl


class FGSMParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PGDParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = Field(default=10, ge=1)
    step_size: StepSize | None = Field(
        default=None, description='Absolute ("2/255") or relative ("eps/8"); default 2.5*eps/steps.')
    random_start: bool = True

    def alpha(self, eps: float) -> float:
        return self.step_size.absolute(eps) if self.step_size else 2.5 * eps / self.steps


def fgsm(params: FGSMParams, threat: ThreatModel):
    import torchattacks

    def perturb(model, x, y):
        return torchattacks.FGSM(model, eps=threat.eps)(x, y)

    return perturb


def pgd(params: PGDParams, threat: ThreatModel):
    import torchattacks

    attack_class = torchattacks.PGD if threat.norm == "linf" else torchattacks.PGDL2
    alpha = params.alpha(threat.eps)

    def perturb(model, x, y):
        attack = attack_class(model, eps=threat.eps, alpha=alpha, steps=params.steps,
                              random_start=params.random_start)
        return attack(x, y)

    return perturb


@hookimpl
def harness_register_attacks(registry):
    registry.add("fgsm", fgsm, params=FGSMParams, norms=["linf"],
                 description="torchattacks.FGSM: one signed-gradient step of size eps")
    registry.add("pgd", pgd, params=PGDParams, norms=["linf"],
                 description="torchattacks.PGD: PGD in the linf ball, uniform random start")
    registry.add("pgdl2", pgd, params=PGDParams, norms=["l2"],
                 description="torchattacks.PGDL2: PGD in the l2 ball")
