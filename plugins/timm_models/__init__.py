"""Vision transformers and modern nets from timm 1.0.31, adapted to the dataset's input size.

timm's models are built for 224×224 ImageNet. On 32×32 CIFAR or 8×8 digits most of them either
refuse the input (ViT-style position tables sized for 224) or shrink it to nothing (a total
stride of 32). Each named factory here (``vit``, ``deit``, ``cait``, ``swin``, ``pvt-v2``,
``coatnet``, ``levit``, ``convnext``, ``poolformer``, ``convmixer``, ``mlp-mixer``) derives the
size-dependent arguments from ``info.input_shape``: ``img_size``, the patch size (16 at ≥224, 4
at CIFAR scale, 2 at digits scale for ViTs), Swin's window, PVT's spatial-reduction ratios,
ConvNeXt's patch stem and PoolFormer's stem stride. Inputs a model cannot take are rejected by
the registry's ``check_input``, i.e. by ``harness validate``, with the reason and a way out, not
by a shape error deep in a forward. ``timm`` is the generic passthrough: any timm model name
plus keyword overrides, checked at validation time by a shape-only forward on the meta device.

Where things are:

* ``params`` — every factory's parameter model (``kwargs`` is shared by all);
* ``geometry`` — the input-size rules (``adapted_kwargs``, ``input_problem``), no timm import;
* ``builders`` — building through timm, or timm's class directly where an entrypoint fixes an
  argument (mlp-mixer, poolformer, convmixer), and the meta-device ``probe``;
* ``families`` — the registration table ``FAMILIES``, each row's factory and check, and
  ``minimum_input``;
* ``generic`` — the ``timm`` passthrough, local weights only;
* ``checkpoints`` — loading those weights strictly (the checkpoint's head kept when it has the
  dataset's class count, harness checkpoints recognised);
* ``activations`` — ``activation_classes``, an inventory of a model's activation classes (what
  an activation swap must match); re-exported here, as nothing in the plugin itself calls it.
"""

from __future__ import annotations

from harness import hookimpl

from .activations import activation_classes
from .families import FAMILIES, TINY_VIT, named_check, named_factory
from .generic import GenericParams, check_timm_input, timm_model

__all__ = ["activation_classes"]
__version__ = "1.0"


@hookimpl
def harness_register_architectures(registry):
    for family, spec in FAMILIES.items():
        registry.add(family, named_factory(family), params=spec.params, description=spec.description,
                     test_params=spec.test_params, test_input_shape=spec.test_input_shape,
                     check_input=named_check(family))
    registry.add("timm", timm_model, params=GenericParams,
                 description="any timm model by name, with kwargs overrides (no size adaptation); "
                             "local weights only",
                 test_params={"model": "vit_tiny_patch16_224",
                              "kwargs": {"img_size": 8, "patch_size": 2, **TINY_VIT}},
                 test_input_shape=(1, 8, 8), check_input=check_timm_input)
