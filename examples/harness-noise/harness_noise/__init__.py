"""An example plugin package: a uniform-noise attack and a two-layer perceptron.

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
    """Uniform points of the linf ball; per example, the last draw that fools the model."""

    @torch.no_grad()
    def attack(model, x, y):
        best = x.clone()
        for _ in range(params.tries):
            noise = threat.eps * (2 * torch.rand_like(x) - 1)
            candidate = (x + noise).clamp(0, 1)
            wrong = model(candidate).argmax(1) != y
            best = torch.where(wrong.view(-1, *[1] * (x.dim() - 1)), candidate, best)
        return best

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
                 black_box=True, description="uniform noise in the linf ball (example package)")


@hookimpl
def harness_register_architectures(registry):
    registry.add("mlp-example", mlp, params=MLPParams, test_params={"hidden": 16},
                 description="a two-layer perceptron (example package)")
