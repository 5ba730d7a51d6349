"""The derived network: cells of edges, the auxiliary head and NetworkCIFAR (Liu et al., DARTS).

The robust-NAS studies (RACL, Dong et al., arXiv 2009.00902; AdvRush; RobNet comparisons) retrain
a searched cell as a stack of ``layers`` cells on top of a 3×3 stem of 3·C channels, with
reduction cells (channels ×2, spatial size ÷2) at 1/3 and 2/3 of the depth, global average
pooling and a linear classifier (Liu et al., DARTS, ICLR 2019). A cell takes the outputs of the
two previous cells, preprocesses them to C channels, computes ``len(ops) // 2`` intermediate
nodes (each the sum of two edges ``op(state[input])``) and concatenates the listed nodes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .genotypes import Genotype
from .ops import OP_KINDS, EdgeKind, FactorizedReduce, ReLUConvBN, drop_path, make_op


class Edge(NamedTuple):
    """One edge of a cell, for architecture metrics: ``node`` sums ``module(state[input])``."""

    node: int
    input: int
    op_name: str
    kind: EdgeKind
    stride: int
    module: nn.Module


class DartsCell(nn.Module):
    """A cell of the derived network: two preprocessed inputs, ``steps`` nodes, concat of ``concat``."""

    def __init__(self, pairs: list[tuple[str, int]], concat: list[int], c_prev_prev: int, c_prev: int,
                 channels: int, reduction: bool, reduction_prev: bool) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0: nn.Module = (FactorizedReduce(c_prev_prev, channels) if reduction_prev
                                       else ReLUConvBN(c_prev_prev, channels, 1, 1, 0))
        self.preprocess1 = ReLUConvBN(c_prev, channels, 1, 1, 0)
        self.op_names = [op for op, _ in pairs]
        self.inputs = [source for _, source in pairs]
        # Only edges that read a cell input (0 or 1) downsample in a reduction cell (DARTS's rule).
        self.strides = [2 if reduction and source < 2 else 1 for source in self.inputs]
        self.ops = nn.ModuleList(make_op(op, channels, stride)
                                 for op, stride in zip(self.op_names, self.strides, strict=True))
        self.steps = len(pairs) // 2
        self.concat = list(concat)
        self.multiplier = len(concat)

    def edges(self) -> Iterator[Edge]:
        """Each edge as ``Edge(node, input, op_name, kind, stride, module)``, in genotype order."""
        for k, (op, source, stride, module) in enumerate(
                zip(self.op_names, self.inputs, self.strides, self.ops, strict=True)):
            kind: EdgeKind = "conv" if op == "skip_connect" and stride > 1 else OP_KINDS[op]
            yield Edge(k // 2 + 2, source, op, kind, stride, module)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for step in range(self.steps):
            total: torch.Tensor | None = None
            for k in (2 * step, 2 * step + 1):
                op = self.ops[k]
                h = op(states[self.inputs[k]])
                if self.training and drop_prob > 0 and not isinstance(op, nn.Identity):
                    h = drop_path(h, drop_prob)
                total = h if total is None else total + h
            assert total is not None
            states.append(total)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """DARTS's CIFAR auxiliary classifier on the 2/3-depth feature map (8×8 at 32×32 inputs).

    ReLU → avgpool 5 stride 3 (8×8 → 2×2) → conv1×1 128 → BN ReLU → conv2×2 768 → BN ReLU → FC.
    Maps of another size are pooled adaptively to 2×2 so the head fits any input size.
    """

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU())
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        if min(x.shape[-2:]) >= 5:
            x = F.avg_pool2d(x, 5, stride=3, count_include_pad=False)
        if tuple(x.shape[-2:]) != (2, 2):
            x = F.adaptive_avg_pool2d(x, 2)
        return self.classifier(self.features(x).flatten(1))


class DartsNetwork(nn.Module):
    """NetworkCIFAR: stem conv3×3 (3·C) + BN → ``layers`` cells → global avg pool → linear.

    Reduction cells sit at ``layers // 3`` and ``2 * layers // 3`` and double the channels.
    ``drop_path_prob`` is read at every training forward; the trainer's ``harness_epoch_start`` hook
    ramps it linearly from 0 towards ``max_drop_path_prob`` (DARTS's schedule). With
    ``auxiliary``, a training forward also stores the auxiliary head's logits in ``aux_logits``
    (``forward`` itself returns the main logits only), and the trainer adds
    ``harness_auxiliary_loss(y)`` = ``auxiliary_weight · CE(aux_logits, y)`` to the defense's loss.
    """

    search_space = "darts"

    def __init__(self, genotype: Genotype, in_channels: int, num_classes: int, channels: int = 36,
                 layers: int = 20, auxiliary: bool = False, drop_path_prob: float = 0.0,
                 stem_multiplier: int = 3, auxiliary_weight: float = 0.4) -> None:
        super().__init__()
        self.genotype = genotype
        self.layers = layers
        self.max_drop_path_prob = self.drop_path_prob = drop_path_prob
        self.auxiliary_weight = auxiliary_weight
        self.aux_logits: torch.Tensor | None = None
        c_curr = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_curr))
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, channels
        self.reduction_indices = sorted({layers // 3, 2 * layers // 3})
        self.auxiliary_index = 2 * layers // 3
        cells, reduction_prev, c_aux = [], False, 0
        for i in range(layers):
            reduction = i in self.reduction_indices
            if reduction:
                c_curr *= 2
            pairs, concat = genotype.cell(reduction)
            cell = DartsCell(pairs, concat, c_prev_prev, c_prev, c_curr, reduction, reduction_prev)
            cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
            if i == self.auxiliary_index:
                c_aux = c_prev
        self.cells = nn.ModuleList(cells)
        self.auxiliary_head = AuxiliaryHead(c_aux, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)
        self.out_channels = c_prev
        #: Submodule whose output is the final feature map before global pooling (as on cnns backbones).
        self.feature_map_module = f"cells.{layers - 1}"

    def feature_map_shape(self, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
        """(C, H, W) of the last cell's output: each reduction cell maps H to ⌈H/2⌉."""
        _, h, w = input_shape
        for _ in self.reduction_indices:
            h, w = -(-h // 2), -(-w // 2)
        return self.out_channels, h, w

    def harness_epoch_start(self, epoch: int, epochs: int) -> None:
        """DARTS's drop-path schedule: 0 in the first epoch, rising linearly towards the maximum."""
        self.drop_path_prob = self.max_drop_path_prob * epoch / epochs

    def harness_auxiliary_loss(self, y: torch.Tensor) -> torch.Tensor | None:
        """The auxiliary head's weighted loss on the last training forward (the trainer adds it)."""
        if self.aux_logits is None:
            return None
        loss, self.aux_logits = self.auxiliary_weight * F.cross_entropy(self.aux_logits, y), None
        return loss

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        drop_prob = self.drop_path_prob if self.training else 0.0
        self.aux_logits = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, drop_prob)
            if i == self.auxiliary_index and self.auxiliary_head is not None and self.training:
                self.aux_logits = self.auxiliary_head(s1)
        return self.classifier(self.global_pooling(s1).flatten(1))
