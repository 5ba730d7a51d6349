"""DARTS-search-space networks (NetworkCIFAR) built from published or inline genotypes.

The robust-NAS studies (RACL, Dong et al., arXiv 2009.00902; AdvRush; RobNet comparisons) retrain
a searched cell as a stack of ``layers`` cells on top of a 3×3 stem of 3·C channels, with
reduction cells (channels ×2, spatial size ÷2) at 1/3 and 2/3 of the depth, global average
pooling and a linear classifier (Liu et al., DARTS, ICLR 2019). A cell takes the outputs of the
two previous cells, preprocesses them to C channels, computes ``len(ops) // 2`` intermediate
nodes (each the sum of two edges ``op(state[input])``) and concatenates the listed nodes.

Every stride-2 op rounds up (⌈H/2⌉), so any input size works, 8×8 digits included (8 → 4 → 2).

Genotypes: ``GENOTYPES`` (RACL, DARTS_V1, DARTS_V2, PDARTS, PC_DARTS, ADVRUSH in the 8-op
DARTS space; NASNET and AMOEBANET, which also use sep_conv_7x7 / conv_7x1_1x7 and 5 nodes), or an
inline ``{normal = [[op, input], ...], reduce = [...]}`` validated by pydantic.

For architecture-level metrics (RACL's Lipschitz bound: per edge λ_o, per cell the sum over
incoming edges, the network the product over cells), a metrics plugin finds the network with
``next(m for m in model.modules() if getattr(m, "search_space", None) == "darts")`` and reads:

* ``net.stem`` (conv 3×3 + BN), ``net.cells`` (an ``nn.ModuleList`` in forward order),
  ``net.classifier`` (``nn.Linear``), ``net.genotype`` (the resolved ``Genotype``);
* per cell: ``cell.reduction``, ``cell.preprocess0`` / ``cell.preprocess1`` (ReLU-conv1×1-BN, or
  ``FactorizedReduce`` after a reduction cell), ``cell.concat`` and ``cell.edges()``, which yields
  ``Edge(node, input, op_name, kind, stride, module)`` for each of the cell's edges, where
  ``kind`` is ``"conv"`` (sep/dil/7×7/7×1-1×7 convs and the stride-2 skip, a FactorizedReduce of
  two 1×1 convs: spectral norms by power iteration over the ``nn.Conv2d`` / ``nn.BatchNorm2d`` in
  ``module.modules()``), or one of the analytic ``"pool"`` (max/avg 3×3), ``"skip"`` (identity)
  and ``"zero"`` (none). ``OP_KINDS`` maps op names to kinds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal, NamedTuple

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from torch import nn

from harness import DataInfo, hookimpl, normalized

__version__ = "1.1"  # 1.1: drop-path ramp and auxiliary loss applied by the trainer

# --- genotypes -------------------------------------------------------------------------------------

#: The 8 candidate ops of the DARTS search space (the RACL space), in DARTS's order.
PRIMITIVES: tuple[str, ...] = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
                               "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
#: Extra ops that only the NASNet and AmoebaNet cells need (DARTS's operations.py has them too).
EXTRA_OPS: tuple[str, ...] = ("sep_conv_7x7", "conv_7x1_1x7")

OpName = Literal["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                 "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5", "sep_conv_7x7", "conv_7x1_1x7"]

EdgeKind = Literal["conv", "pool", "skip", "zero"]

#: How a Lipschitz estimate treats each op (skip_connect at stride 2 is a FactorizedReduce: "conv").
OP_KINDS: dict[str, EdgeKind] = {
    "none": "zero", "max_pool_3x3": "pool", "avg_pool_3x3": "pool", "skip_connect": "skip",
    "sep_conv_3x3": "conv", "sep_conv_5x5": "conv", "dil_conv_3x3": "conv", "dil_conv_5x5": "conv",
    "sep_conv_7x7": "conv", "conv_7x1_1x7": "conv",
}


class Genotype(BaseModel):
    """A normal and a reduction cell: ``(op, input)`` pairs, two per intermediate node.

    Pair ``k`` feeds node ``k // 2 + 2``; its input is 0 or 1 (the two previous cells' outputs)
    or an earlier node (2 … node − 1). The ``*_concat`` lists are the nodes concatenated into the
    cell's output (default: every intermediate node, as in all DARTS-space genotypes).
    """

    model_config = ConfigDict(extra="forbid")

    normal: list[tuple[OpName, int]] = Field(
        min_length=2, description="Normal cell: [op, input] pairs, two per intermediate node.")
    normal_concat: list[int] | None = Field(
        default=None, description="Nodes concatenated into the normal cell's output "
                                  "(default: all intermediate nodes, e.g. [2, 3, 4, 5]).")
    reduce: list[tuple[OpName, int]] = Field(
        min_length=2, description="Reduction cell: [op, input] pairs; ops on inputs 0 and 1 "
                                  "have stride 2.")
    reduce_concat: list[int] | None = Field(
        default=None, description="Nodes concatenated into the reduction cell's output.")

    @model_validator(mode="after")
    def _check_wiring(self) -> Genotype:
        for cell in ("normal", "reduce"):
            pairs: list[tuple[str, int]] = getattr(self, cell)
            if len(pairs) % 2:
                raise ValueError(f"{cell} has {len(pairs)} (op, input) pairs; each intermediate "
                                 f"node takes exactly two, so the count must be even")
            for k, (op, source) in enumerate(pairs):
                node = k // 2 + 2
                if not 0 <= source < node:
                    raise ValueError(
                        f"{cell}[{k}] = ({op!r}, {source}): input {source} is not available to "
                        f"node {node}; it can take 0 or 1 (the cell inputs) or an earlier node "
                        f"(up to {node - 1})")
            concat = getattr(self, f"{cell}_concat")
            if concat is not None:
                last = len(pairs) // 2 + 1
                bad = [n for n in concat if not 0 <= n <= last]
                if not concat or bad or len(set(concat)) != len(concat):
                    raise ValueError(f"{cell}_concat = {concat}: give distinct nodes in 0..{last} "
                                     f"(the intermediate nodes are 2..{last})")
        return self

    def cell(self, reduction: bool) -> tuple[list[tuple[str, int]], list[int]]:
        """``(pairs, concat)`` of the reduction or normal cell, with the default concat filled in."""
        pairs = self.reduce if reduction else self.normal
        concat = self.reduce_concat if reduction else self.normal_concat
        return list(pairs), list(concat) if concat is not None else list(range(2, len(pairs) // 2 + 2))


def _genotype(normal: list[tuple[str, int]], reduce: list[tuple[str, int]],
              normal_concat: list[int] | None = None, reduce_concat: list[int] | None = None) -> Genotype:
    return Genotype.model_validate({"normal": normal, "reduce": reduce, "normal_concat": normal_concat,
                                    "reduce_concat": reduce_concat})


#: Published genotypes (checked against quark0/darts, chenxin061/pdarts, yuhuixu1993/PC-DARTS and
#: nutellamok/advrush genotypes.py; RACL as in studies.md, the copy next to AdvRush's genotypes).
GENOTYPES: dict[str, Genotype] = {
    # Dong et al., RACL (arXiv 2009.00902).
    "RACL": _genotype(
        normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_5x5", 0), ("skip_connect", 1),
                ("sep_conv_3x3", 0), ("skip_connect", 3), ("sep_conv_3x3", 3), ("skip_connect", 4)],
        reduce=[("sep_conv_3x3", 0), ("sep_conv_5x5", 1), ("avg_pool_3x3", 0), ("dil_conv_3x3", 1),
                ("sep_conv_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_3x3", 2), ("dil_conv_3x3", 3)]),
    # Liu et al., DARTS first order.
    "DARTS_V1": _genotype(
        normal=[("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
                ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
        reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
                ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)]),
    # Liu et al., DARTS second order (the paper's 3.3M-parameter CIFAR-10 network).
    "DARTS_V2": _genotype(
        normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
                ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
        reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
                ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)]),
    # Chen et al., P-DARTS (CIFAR-10 search).
    "PDARTS": _genotype(
        normal=[("skip_connect", 0), ("dil_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 1),
                ("sep_conv_3x3", 1), ("sep_conv_3x3", 3), ("sep_conv_3x3", 0), ("dil_conv_5x5", 4)],
        reduce=[("avg_pool_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("dil_conv_5x5", 2),
                ("max_pool_3x3", 0), ("dil_conv_3x3", 1), ("dil_conv_3x3", 1), ("dil_conv_5x5", 3)]),
    # Xu et al., PC-DARTS (CIFAR-10 search).
    "PC_DARTS": _genotype(
        normal=[("sep_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 0), ("dil_conv_3x3", 1),
                ("sep_conv_5x5", 0), ("sep_conv_3x3", 1), ("avg_pool_3x3", 0), ("dil_conv_3x3", 1)],
        reduce=[("sep_conv_5x5", 1), ("max_pool_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_5x5", 2),
                ("sep_conv_3x3", 0), ("sep_conv_3x3", 3), ("sep_conv_3x3", 1), ("sep_conv_3x3", 2)]),
    # Mok et al., AdvRush (ICCV 2021), a robust-NAS baseline of the same space.
    "ADVRUSH": _genotype(
        normal=[("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 0), ("sep_conv_3x3", 1),
                ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1)],
        reduce=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("skip_connect", 0), ("dil_conv_3x3", 2),
                ("skip_connect", 0), ("avg_pool_3x3", 1), ("skip_connect", 0), ("skip_connect", 2)]),
    # Zoph et al., NASNet-A, as transcribed in the DARTS repository (5 nodes, partial concat).
    "NASNET": _genotype(
        normal=[("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 0), ("sep_conv_3x3", 0),
                ("avg_pool_3x3", 1), ("skip_connect", 0), ("avg_pool_3x3", 0), ("avg_pool_3x3", 0),
                ("sep_conv_3x3", 1), ("skip_connect", 1)],
        normal_concat=[2, 3, 4, 5, 6],
        reduce=[("sep_conv_5x5", 1), ("sep_conv_7x7", 0), ("max_pool_3x3", 1), ("sep_conv_7x7", 0),
                ("avg_pool_3x3", 1), ("sep_conv_5x5", 0), ("skip_connect", 3), ("avg_pool_3x3", 2),
                ("sep_conv_3x3", 2), ("max_pool_3x3", 1)],
        reduce_concat=[4, 5, 6]),
    # Real et al., AmoebaNet-A, as transcribed in the DARTS repository.
    "AMOEBANET": _genotype(
        normal=[("avg_pool_3x3", 0), ("max_pool_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 2),
                ("sep_conv_3x3", 0), ("avg_pool_3x3", 3), ("sep_conv_3x3", 1), ("skip_connect", 1),
                ("skip_connect", 0), ("avg_pool_3x3", 1)],
        normal_concat=[4, 5, 6],
        reduce=[("avg_pool_3x3", 0), ("sep_conv_3x3", 1), ("max_pool_3x3", 0), ("sep_conv_7x7", 2),
                ("sep_conv_7x7", 0), ("avg_pool_3x3", 1), ("max_pool_3x3", 0), ("max_pool_3x3", 1),
                ("conv_7x1_1x7", 0), ("sep_conv_3x3", 5)],
        reduce_concat=[3, 4, 6]),
}


def canonical_genotype_name(name: str) -> str:
    """``darts-v2`` / ``Darts_V2`` → ``DARTS_V2``; suites may spell names either way."""
    return name.strip().upper().replace("-", "_")


def resolve_genotype(genotype: str | Genotype) -> Genotype:
    return GENOTYPES[canonical_genotype_name(genotype)] if isinstance(genotype, str) else genotype


# --- ops -------------------------------------------------------------------------------------------


class Zero(nn.Module):
    """The ``none`` op: zeros of the (strided) input's shape, so the edge contributes nothing."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, ::self.stride, ::self.stride]
        return x * 0.0


class ReLUConvBN(nn.Sequential):
    """ReLU → conv (no bias) → BN: the cell-input preprocessing."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(nn.ReLU(), nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
                         nn.BatchNorm2d(c_out))


class FactorizedReduce(nn.Module):
    """ReLU → two stride-2 1×1 convs, the second on the input shifted by one pixel → concat → BN.

    DARTS shifts with ``x[:, :, 1:, 1:]``, which breaks on odd sizes (the two halves differ by a
    pixel); padding the shifted input back to full size gives the same values on even sizes and
    ⌈H/2⌉ on odd ones, like every other stride-2 op here.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class SepConv(nn.Sequential):
    """Separable conv applied twice: (ReLU → depthwise k×k → pointwise 1×1 → BN) × 2; stride first."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        padding = kernel // 2
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(c_in, c_in, kernel, stride, padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_in, 1, bias=False),
            nn.BatchNorm2d(c_in),
            nn.ReLU(),
            nn.Conv2d(c_in, c_in, kernel, 1, padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )


class DilConv(nn.Sequential):
    """ReLU → depthwise k×k with dilation 2 → pointwise 1×1 → BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, dilation: int = 2) -> None:
        padding = dilation * (kernel - 1) // 2
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Conv7x1x1x7(nn.Sequential):
    """ReLU → 1×7 conv → 7×1 conv → BN (AmoebaNet's factorized 7×7)."""

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(channels, channels, (1, 7), stride=(1, stride), padding=(0, 3), bias=False),
            nn.Conv2d(channels, channels, (7, 1), stride=(stride, 1), padding=(3, 0), bias=False),
            nn.BatchNorm2d(channels),
        )


def make_op(name: str, channels: int, stride: int) -> nn.Module:
    """The module of one edge; every op maps C channels to C and H×W to ⌈H/s⌉×⌈W/s⌉."""
    if name == "none":
        return Zero(stride)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(channels, channels)
    if name.startswith("sep_conv_"):
        return SepConv(channels, channels, int(name[-1]), stride)
    if name.startswith("dil_conv_"):
        return DilConv(channels, channels, int(name[-1]), stride)
    if name == "conv_7x1_1x7":
        return Conv7x1x1x7(channels, stride)
    raise ValueError(f"unknown DARTS op {name!r}; known: {', '.join(OP_KINDS)}")


def drop_path(x: torch.Tensor, prob: float) -> torch.Tensor:
    """Zero whole examples of an edge's output with probability ``prob``, rescaling the rest."""
    keep = 1.0 - prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x * mask / keep  # not in place: the op's output may be needed for its backward


# --- cells and network -----------------------------------------------------------------------------


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
        #: Submodule whose output is the final feature map before global pooling (as in cnns.py).
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


# --- registration ----------------------------------------------------------------------------------


class DartsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    genotype: str | Genotype = Field(
        default="DARTS_V2",
        description=f"A published genotype ({', '.join(GENOTYPES)}; case and -/_ do not matter) "
                    "or an inline {normal = [[op, input], ...], reduce = [...]}.")
    C: int = Field(default=36, ge=1, description="Initial channels (the stem has 3·C); 36 is "
                                                 "the DARTS CIFAR setting.")
    layers: int = Field(default=20, ge=3, description="Number of cells; reduction cells at "
                                                      "layers//3 and 2·layers//3.")
    drop_path_prob: float = Field(default=0.0, ge=0, lt=1, description="Drop-path probability per "
                                  "non-identity edge in training, ramped linearly from 0 over the "
                                  "epochs as DARTS does (DARTS uses 0.2).")
    auxiliary: bool = Field(default=False, description="Build DARTS's auxiliary head at 2/3 depth "
                            "and add its weighted cross-entropy to the training loss; forward "
                            "still returns the main logits only.")
    auxiliary_weight: float = Field(default=0.4, ge=0, description="Weight of the auxiliary "
                                    "head's loss (DARTS: 0.4).")

    @field_validator("genotype", mode="before")
    @classmethod
    def _resolve(cls, value: Any) -> str | Genotype:
        """A known name (canonicalized) or a validated inline genotype, with a one-line error.

        Validated here rather than as a plain union so an error names the genotype's own key path
        (``normal[1][0]: ...``) instead of pydantic's union branches.
        """
        if isinstance(value, str):
            name = canonical_genotype_name(value)
            if name not in GENOTYPES:
                raise ValueError(f"unknown genotype {value!r}; known: {', '.join(GENOTYPES)}, "
                                 "or an inline {normal = [[op, input], ...], reduce = [...]}")
            return name
        if isinstance(value, Genotype):
            return value
        if not isinstance(value, dict):
            raise ValueError(f"expected a genotype name ({', '.join(GENOTYPES)}) or an inline "
                             f"{{normal = [[op, input], ...], reduce = [...]}}, got {value!r}")
        try:
            return Genotype.model_validate(value)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
            where = where.lstrip(".")
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "missing":
                message = "required key is missing"
            elif error["type"] != "value_error" and not isinstance(error.get("input"), dict | list):
                message += f" (got {error.get('input')!r})"
            raise ValueError(f"inline genotype: {where + ': ' if where else ''}{message}") from None


def darts_network(params: DartsParams, info: DataInfo) -> nn.Module:
    """A DARTS NetworkCIFAR of the params' genotype, for the dataset's channels and classes."""
    backbone = DartsNetwork(resolve_genotype(params.genotype), info.input_shape[0], info.num_classes,
                            params.C, params.layers, params.auxiliary, params.drop_path_prob,
                            auxiliary_weight=params.auxiliary_weight)
    return normalized(backbone, info)


@hookimpl
def harness_register_architectures(registry):
    registry.add("darts", darts_network, params=DartsParams,
                 description="DARTS-space NetworkCIFAR from a genotype (RACL, DARTS_V1/V2, PDARTS, "
                             "PC_DARTS, ADVRUSH, NASNET, AMOEBANET, or inline)",
                 test_params={"genotype": "RACL", "C": 4, "layers": 3}, test_input_shape=(1, 8, 8))
