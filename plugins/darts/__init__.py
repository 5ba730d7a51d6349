"""DARTS-search-space networks (NetworkCIFAR) built from published or inline genotypes.

Registers ``darts``: a NetworkCIFAR of a genotype, for the dataset's channels and classes. Where
things are: ``genotypes`` (the ``Genotype`` model and the published ``GENOTYPES``), ``ops`` (the
edges' candidate ops and ``OP_KINDS``) and ``network`` (cells, auxiliary head, the network).

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

from typing import Any

from pydantic import Field, ValidationError, field_validator
from torch import nn

from harness import DataInfo, Params, hookimpl, normalized

from .genotypes import GENOTYPES, Genotype, canonical_genotype_name, resolve_genotype
from .network import DartsNetwork

__version__ = "1.1"  # 1.1: drop-path ramp and auxiliary loss applied by the trainer


class DartsParams(Params):
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
