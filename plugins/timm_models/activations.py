"""Which activation classes a timm model uses, for activation-swap variants.

timm mixes ``torch.nn`` activations with its own ``timm.layers.activations`` classes (GELU,
Sigmoid, …) that do *not* subclass ``torch.nn``'s.
"""

from __future__ import annotations

from torch import nn


def activation_classes(model: nn.Module) -> dict[str, int]:
    """``module.qualname → count`` of the modules in ``model`` whose class is defined in
    ``torch.nn.modules.activation`` or ``timm.layers.activations`` (MultiheadAttention aside).

    What an activation swap must match, by class: timm's ``timm.layers.activations.GELU``
    (ConvNeXt, CoAtNet) is not an ``nn.GELU``. Not everything listed is a ReLU-like activation:
    Swin's ``nn.Softmax`` is its attention, CoAtNet's ``timm`` ``Sigmoid`` its SE gate and its
    ``Tanh`` the pre-logits of the head.
    """
    import timm.layers.activations as timm_activations

    sources = (nn.modules.activation.__name__, timm_activations.__name__)
    found: dict[str, int] = {}
    for module in model.modules():
        kind = type(module)
        if kind.__module__ in sources and kind is not nn.MultiheadAttention:
            key = f"{kind.__module__}.{kind.__qualname__}"
            found[key] = found.get(key, 0) + 1
    return found
