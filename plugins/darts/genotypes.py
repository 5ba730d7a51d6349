"""DARTS-space genotypes: the cell description, its validation, and the published ones.

``GENOTYPES``: RACL, DARTS_V1, DARTS_V2, PDARTS, PC_DARTS, ADVRUSH in the 8-op DARTS space;
NASNET and AMOEBANET, which also use sep_conv_7x7 / conv_7x1_1x7 and 5 nodes. An inline
genotype (``{normal = [[op, input], ...], reduce = [...]}``) is a ``Genotype`` validated by
pydantic, so a miswired cell is an error before anything is built.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: The 8 candidate ops of the DARTS search space (the RACL space), in DARTS's order.
PRIMITIVES: tuple[str, ...] = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
                               "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
#: Extra ops that only the NASNet and AmoebaNet cells need (DARTS's operations.py has them too).
EXTRA_OPS: tuple[str, ...] = ("sep_conv_7x7", "conv_7x1_1x7")

OpName = Literal["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                 "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5", "sep_conv_7x7", "conv_7x1_1x7"]


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
