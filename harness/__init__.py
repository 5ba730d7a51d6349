"""robust-harness: adversarially train architectures and evaluate them against many attacks.

The public API for plugin authors and scripts lives here; everything else is engine detail.
"""

__version__ = "0.1.0"

from harness.contracts import Attack, DataInfo, Defense, LoadedDataset, LocalFile
from harness.errors import ContractViolation, PluginError, UserError
from harness.flags import raise_flag
from harness.hookspecs import hookimpl
from harness.nn import Normalize, normalized
from harness.threat import StepSize, ThreatModel, parse_eps

__all__ = [
    "Attack",
    "ContractViolation",
    "DataInfo",
    "Defense",
    "LoadedDataset",
    "LocalFile",
    "Normalize",
    "PluginError",
    "StepSize",
    "ThreatModel",
    "UserError",
    "__version__",
    "hookimpl",
    "normalized",
    "parse_eps",
    "raise_flag",
]
