"""CIFAR-style CNN zoo adapted to the dataset's input size and channels.

A small CNN, ResNet-18/34/50, PreAct-ResNet-18/34, VGG-11/13/16/19 (BN), AlexNet, DenseNet-121,
MobileNetV2 and the per-stage WideResNet of Huang et al. 2021 (RobustWideResNet). Every network
but the small CNN uses a CIFAR stem (no early downsampling) and takes a ``strides`` string, one
digit per downsampling point, so the larger-feature-map study (Xu et al., arXiv 2202.12435) can
move them. Every zoo backbone exposes its final feature map before global pooling
(``feature_map_module``, ``feature_map_shape``; see ``backbone``).

Where things are: ``backbone`` (what the zoo networks share), one module per family
(``resnet``, ``preact``, ``vgg``, ``alexnet``, ``densenet``, ``mobilenet``, ``wideresnet``,
``small_cnn``), and ``zoo``, the registration table: one ``ZooEntry`` row per factory, all
registered by the loop below.
"""

from __future__ import annotations

from harness import hookimpl

from .small_cnn import SmallCNNParams, small_cnn
from .zoo import ZOO, factory_for, input_check


@hookimpl
def harness_register_architectures(registry):
    # not a zoo row: the small CNN sizes its head from the input (it takes info), has no strides
    registry.add("small-cnn", small_cnn, params=SmallCNNParams,
                 description="two 3×3 convs, max-pool, two FC layers",
                 test_params={"channels": 4, "hidden": 16})
    for entry in ZOO:
        registry.add(entry.name, factory_for(entry.build), params=entry.params,
                     description=entry.description, test_params=entry.test_params,
                     test_input_shape=entry.test_input_shape,
                     check_input=input_check(entry.build, entry.thin))
