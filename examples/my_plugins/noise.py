import torch

from harness import Params, hookimpl


class NoiseParams(Params):
    tries: int = 10


def noise_attack(params: NoiseParams, threat):
    @torch.no_grad()
    def perturb(model, x, y):  # random corners of the linf ball; keep those that fool the model
        x_adv = x.clone()
        for _ in range(params.tries):
            candidate = (x + threat.eps * torch.randn_like(x).sign()).clamp(0, 1)
            fooled = model(candidate).argmax(1) != y
            x_adv[fooled] = candidate[fooled]
        return x_adv

    return perturb


@hookimpl
def harness_register_attacks(registry):
    registry.add("random-corners", noise_attack, params=NoiseParams, norms=["linf"])
