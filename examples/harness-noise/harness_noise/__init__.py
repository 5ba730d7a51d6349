"""An example plugin package: a random-sign noise attack and a two-layer perceptron.

Installed (``pip install -e examples/harness-noise``), it registers through the
``robust_harness`` entry point; ``harness list attacks 'uniform*'`` then shows it.
"""

import torch
from torch import nn

from harness import Params, hookimpl, normalized

__version__ = "0.1.0"


class NoiseParams(Params):
    tries: int = 10


def uniform_noise(params: NoiseParams, threat):
    """Random corners of the linf ball; the first that fools the model is kept."""

    @torch.no_grad()
    def attack(model, x, y):
        x_adv = x.clone()
        for _ in range(params.tries):
            candidate = (x + threat.eps * torch.randn_like(x).sign()).clamp(0, 1)
            fooled = model(candidate).argmax(1) != y
            x_adv[fooled] = candidate[fooled]
        return x_adv

    return attack


class MLPParams(Params):
    hidden: int = 64


def mlp(params: MLPParams, info):
    channels, height, width = info.input_shape
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(channels * height * width, params.hidden),
                             nn.ReLU(), nn.Linear(params.hidden, info.num_classes))
    return normalized(backbone, info)


@hookimpl
def harness_register_attacks(registry):
    registry.add("uniform-noise", uniform_noise, params=NoiseParams, norms=["linf"],
                 black_box=True, description="random linf-ball corners (example package)")


@hookimpl
def harness_register_architectures(registry):
    registry.add("mlp-example", mlp, params=MLPParams, test_params={"hidden": 16},
                 description="a two-layer perceptron (example package)")
