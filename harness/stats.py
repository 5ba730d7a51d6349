"""The statistics a finding needs, as thin wrappers around scipy.stats (no hand-rolled tests).

- Seeds: the mean and a Student-t interval over seeds (``t_interval``). Seeds are the
  independent repeats of training, so this interval is about the architecture's
  reproducibility, not about the test sample.
- Two rows on the same examples: the exact McNemar test on the discordant pairs
  (``mcnemar_exact``) and a paired bootstrap over examples of the accuracy difference
  (``paired_bootstrap``).
- A metric against robustness: Spearman's ρ with a Fisher-z interval (Bonett and Wright's
  standard error for rank correlations) and an exact permutation p-value (``spearman``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05  # a test's level, written out: 1 - 0.95 is 0.05000000000000004 in floats
CONFIDENCE = 1 - ALPHA
#: Permutations are enumerated exactly up to this many points (9! = 362,880), sampled above.
EXACT_PERMUTATIONS_UP_TO = 9
RESAMPLES = 9999


@dataclass(frozen=True)
class Interval:
    """An estimate and its 95% interval; no bounds when ``n`` cannot give one."""

    mean: float
    low: float | None
    high: float | None
    n: int

    @property
    def half_width(self) -> float | None:
        """Half the interval's width (symmetric for t-intervals)."""
        return None if self.low is None or self.high is None else (self.high - self.low) / 2

    def text(self, scale: float = 1.0, spec: str = ".1f") -> str:
        """``mean ± half-width`` (just the mean without an interval), scaled (100 for %)."""
        half = self.half_width
        return f"{scale * self.mean:{spec}}" + ("" if half is None else
                                                f" ± {scale * half:{spec}}")

    def excludes_zero(self) -> bool:
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)

    def as_json(self) -> dict[str, float | int | None]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}


def t_interval(values: list[float] | np.ndarray, confidence: float = CONFIDENCE) -> Interval:
    """Mean ± Student-t interval over independent repeats; no interval from one value."""
    a = np.asarray(values, dtype=float)
    mean = float(a.mean())
    if len(a) < 2 or not np.isfinite(a).all():
        return Interval(mean, None, None, len(a))
    sem = float(stats.sem(a))
    if sem == 0:
        return Interval(mean, mean, mean, len(a))
    low, high = stats.t.interval(confidence, len(a) - 1, loc=mean, scale=sem)
    return Interval(mean, float(low), float(high), len(a))


@dataclass(frozen=True)
class PairedTest:
    """Rows A and B on the same examples: counts, McNemar's p and the accuracy difference."""

    pairs: int
    only_a: int  # pairs where A is right and B wrong
    only_b: int
    p_value: float
    difference: Interval  # accuracy A − B, paired bootstrap over examples


def mcnemar_exact(a: np.ndarray, b: np.ndarray) -> tuple[int, int, float]:
    """(A-only, B-only, two-sided exact p): a binomial test of the discordant pairs against
    1/2, the exact form of McNemar's test (right for the small counts of small test sets)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    if only_a + only_b == 0:
        return only_a, only_b, 1.0
    return only_a, only_b, float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def paired_bootstrap(a: np.ndarray, b: np.ndarray, confidence: float = CONFIDENCE,
                     seed: int = 0) -> Interval:
    """Accuracy difference A − B and its percentile bootstrap interval, resampling examples
    (the same ones for both rows). 2-D inputs are seeds × examples: each example's difference
    is averaged over the seeds first, so seeds stay matched and examples are the resampled unit.
    Percentile rather than BCa: with a handful of discordant pairs BCa's skew correction pulls
    the interval off 0 while McNemar's exact test finds nothing."""
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    per_example = diff.mean(axis=0) if diff.ndim == 2 else diff
    mean = float(per_example.mean())
    if np.all(per_example == per_example[0]):  # no spread to resample
        return Interval(mean, mean, mean, len(per_example))
    low, high = stats.bootstrap((per_example,), np.mean, confidence_level=confidence,
                                n_resamples=RESAMPLES, method="percentile",
                                rng=np.random.default_rng(seed)).confidence_interval
    return Interval(mean, float(low), float(high), len(per_example))


def paired_test(a: np.ndarray, b: np.ndarray, seed: int = 0) -> PairedTest:
    """McNemar on every (seed, example) pair and the bootstrap difference over examples."""
    only_a, only_b, p = mcnemar_exact(np.ravel(a), np.ravel(b))
    return PairedTest(int(np.size(a)), only_a, only_b, p, paired_bootstrap(a, b, seed=seed))


@dataclass(frozen=True)
class Correlation:
    """Spearman's ρ over n points, its Fisher-z interval (n ≥ 4) and exact permutation p."""

    rho: float | None  # None when either variable is constant
    low: float | None
    high: float | None
    p_value: float | None
    n: int

    def conclusive(self) -> bool:
        """Called only when both say so: p < 0.05 and an interval that excludes 0 (at |ρ| = 1,
        where the Fisher interval does not exist, the exact p alone)."""
        if self.rho is None or self.p_value is None or self.p_value >= ALPHA:
            return False
        if abs(self.rho) == 1:
            return True
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)


def _rank_correlation(x_ranks: np.ndarray):
    def statistic(y: np.ndarray, axis: int = -1) -> np.ndarray:
        ranks = stats.rankdata(y, axis=axis)
        return stats.pearsonr(np.broadcast_to(x_ranks, ranks.shape), ranks, axis=axis).statistic

    return statistic


def spearman(x: list[float] | np.ndarray, y: list[float] | np.ndarray,
             confidence: float = CONFIDENCE, seed: int = 0) -> Correlation:
    """Spearman's ρ of paired values. The interval is tanh(atanh ρ ± z·se) with Bonett and
    Wright's se = √((1 + ρ²/2)/(n − 3)), so it needs n ≥ 4 and |ρ| < 1; the p-value is
    from the permutation distribution of ρ (exact up to 9 points), not a large-n formula."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    if n < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return Correlation(None, None, None, None, n)
    rho = round(float(stats.spearmanr(x, y).statistic), 12)  # a perfect order is exactly ±1
    exact = n <= EXACT_PERMUTATIONS_UP_TO
    p = float(stats.permutation_test(
        (y,), _rank_correlation(stats.rankdata(x)), vectorized=True,
        permutation_type="pairings", n_resamples=np.inf if exact else RESAMPLES,
        rng=np.random.default_rng(seed)).pvalue)
    low = high = None
    if n >= 4 and abs(rho) < 1:
        z = stats.norm.ppf(0.5 + confidence / 2)
        se = math.sqrt((1 + rho ** 2 / 2) / (n - 3))
        low, high = math.tanh(math.atanh(rho) - z * se), math.tanh(math.atanh(rho) + z * se)
    return Correlation(rho, low, high, min(p, 1.0), n)


def smallest_p(n: int) -> float:
    """The smallest two-sided permutation p any rank correlation can reach with n points:
    below 0.05 only from n = 5 on (2/n!), which is what 'too few to conclude' means here."""
    return min(1.0, 2 / math.factorial(n)) if n > 1 else 1.0
