"""Every built-in component, of all seven kinds, through the same public kit plugin authors
use (``harness.testing``): real calls on tiny models and data, timm style."""

from __future__ import annotations

import pytest

from harness.session import load_components
from harness.testing import all_cases

CASES = all_cases(load_components(autoload=False))


def test_every_kind_has_cases():
    assert {case.kind for case in CASES} == {"datasets", "architectures", "variants", "attacks",
                                             "defenses", "metrics", "recipes"}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_conformance(case):
    case.check()
