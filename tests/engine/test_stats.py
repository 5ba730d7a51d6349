"""The statistics against values worked out by hand (and scipy), on hand-made outcome arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from harness.stats import (
    Correlation,
    mcnemar_exact,
    paired_bootstrap,
    paired_test,
    smallest_p,
    spearman,
    t_interval,
)


def outcomes(both: int, only_a: int, only_b: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-example correctness of rows A and B with the given 2×2 counts."""
    a = np.array([True] * both + [True] * only_a + [False] * only_b + [False] * neither)
    b = np.array([True] * both + [False] * only_a + [True] * only_b + [False] * neither)
    return a, b


def test_t_interval_over_three_seeds():
    found = t_interval([0.90, 0.92, 0.94])
    # sd 0.02, n 3: half-width t(0.975, 2) · 0.02/√3 with t = 4.302653 (tables)
    assert found.mean == pytest.approx(0.92)
    assert found.half_width == pytest.approx(4.302653 * 0.02 / math.sqrt(3), rel=1e-6)
    assert (found.low, found.high, found.n) == (pytest.approx(0.870317, abs=1e-6),
                                                pytest.approx(0.969683, abs=1e-6), 3)
    assert found.text(100) == "92.0 ± 5.0"


def test_one_seed_has_no_interval_and_equal_seeds_a_zero_one():
    one = t_interval([0.5])
    assert (one.low, one.high, one.half_width, one.text(100)) == (None, None, None, "50.0")
    same = t_interval([0.5, 0.5])
    assert (same.low, same.high) == (0.5, 0.5)


def test_mcnemar_exact_p_on_the_discordant_pairs():
    a, b = outcomes(both=300, only_a=9, only_b=1, neither=50)
    only_a, only_b, p = mcnemar_exact(a, b)
    # two-sided exact binomial: 2 · P(X ≤ 1 | n = 10, 1/2) = 2 · 11/1024
    assert (only_a, only_b) == (9, 1)
    assert p == pytest.approx(22 / 1024)
    assert p == pytest.approx(scipy_stats.binomtest(9, 10).pvalue)
    assert mcnemar_exact(*outcomes(10, 0, 0, 5))[2] == 1.0


def test_paired_bootstrap_matches_the_normal_interval_on_many_examples():
    a, b = outcomes(both=700, only_a=100, only_b=50, neither=150)
    found = paired_bootstrap(a, b)
    d = a.astype(float) - b.astype(float)
    half = 1.959964 * d.std() / math.sqrt(len(d))  # 0.05 ± 1.96 · 0.384/√1000
    assert found.mean == pytest.approx(0.05)
    assert found.low == pytest.approx(0.05 - half, abs=0.004)
    assert found.high == pytest.approx(0.05 + half, abs=0.004)


def test_paired_bootstrap_pairs_seeds_before_resampling_examples():
    a = np.array([[1, 1, 0, 1], [1, 0, 0, 1]], dtype=bool)  # seeds × examples
    b = np.array([[1, 0, 0, 1], [1, 0, 0, 1]], dtype=bool)
    found = paired_bootstrap(a, b)
    assert found.mean == pytest.approx(0.125) and found.n == 4
    assert paired_bootstrap(b, b).low == paired_bootstrap(b, b).high == 0.0
    test = paired_test(a, b)
    assert (test.pairs, test.only_a, test.only_b) == (8, 1, 0)


def test_spearman_with_fisher_interval_and_exact_permutation_p():
    found = spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])
    # 1 − 6·Σd²/(n(n²−1)) = 1 − 24/120; |ρ| ≥ 0.8 in 16 of the 120 orders
    assert found.rho == pytest.approx(0.8)
    assert found.rho == pytest.approx(scipy_stats.spearmanr([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])[0])
    assert found.p_value == pytest.approx(16 / 120)
    se = math.sqrt((1 + 0.8 ** 2 / 2) / 2)
    assert found.low == pytest.approx(math.tanh(math.atanh(0.8) - 1.959964 * se), abs=1e-5)
    assert found.high == pytest.approx(math.tanh(math.atanh(0.8) + 1.959964 * se), abs=1e-5)
    assert found.low == pytest.approx(-0.4572, abs=1e-3) and not found.conclusive()


def test_spearman_limits_of_small_n():
    perfect = spearman([1, 2, 3, 4], [10, 20, 30, 40])
    assert perfect.rho == 1 and perfect.p_value == pytest.approx(2 / 24) == smallest_p(4)
    assert perfect.low is None  # |ρ| = 1: the Fisher interval is undefined
    assert spearman([1, 2, 3], [3, 1, 2]).low is None  # n < 4
    assert spearman([1, 1, 1, 1], [1, 2, 3, 4]).rho is None  # a constant has no ranking
    strong = spearman(list(range(8)), [0, 2, 1, 3, 5, 4, 6, 7])
    assert strong.conclusive() and strong.low > 0
    assert smallest_p(5) == pytest.approx(2 / 120)
    assert smallest_p(5) < 0.05 < smallest_p(4)


def test_p_exactly_at_the_level_is_not_conclusive():
    """36 of 720 orders at n = 6 give p = 0.05 exactly: not below it (1 − 0.95 > 0.05 in floats)."""
    assert not Correlation(-0.88, -0.99, -0.04, 36 / 720, 6).conclusive()
    assert Correlation(-0.88, -0.99, -0.04, 35 / 720, 6).conclusive()
