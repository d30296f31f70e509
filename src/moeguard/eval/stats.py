"""Statistics for evaluation tables: bootstrap CIs over prompts and paired tests against a baseline.

The unit of replication is the prompt: every interval resamples prompts (with replacement), and every
comparison is paired on the same prompts.

>>> mcnemar_exact(0, 5)          # 5 discordant pairs, all one way: 2 * 0.5**5
0.0625
>>> bootstrap_ci([0.0] * 9 + [1.0], resamples=2000, seed=0)
(0.0, 0.3)
>>> paired_bootstrap([1, 1, 1, 0], [0, 0, 1, 0], resamples=2000, seed=0).diff
-0.5
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from moeguard.errors import parameter_error

#: Resamples drawn per chunk (bounds memory at ``chunk x prompts`` indices).
_CHUNK = 256


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value for ``b`` and ``c`` discordant pairs.

    Under the null each discordant pair goes either way with probability 1/2, so
    ``p = min(1, 2 * P(X <= min(b, c)))`` for ``X ~ Binomial(b + c, 1/2)``; 1.0 without discordant pairs.
    """
    if b < 0 or c < 0:
        raise parameter_error("b", f"and c must be counts (>= 0), got {b} and {c}")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2.0 * tail)


@dataclass(frozen=True)
class McNemar:
    """Discordant counts of paired binary outcomes and the exact two-sided p-value.

    ``b``: pairs where the reference is 1 and the condition 0; ``c``: reference 0, condition 1.
    """

    b: int
    c: int
    p: float

    def to_dict(self) -> dict:
        return {"b": self.b, "c": self.c, "p": self.p}


def mcnemar(reference: Sequence[int | bool], condition: Sequence[int | bool]) -> McNemar:
    """Exact McNemar test on per-prompt binary outcomes (same prompts, same order)."""
    _same_length(reference, condition)
    b = sum(1 for r, x in zip(reference, condition, strict=True) if r and not x)
    c = sum(1 for r, x in zip(reference, condition, strict=True) if x and not r)
    return McNemar(b, c, mcnemar_exact(b, c))


def _same_length(x: Sequence, y: Sequence) -> None:
    if len(x) != len(y):
        raise parameter_error("condition", f"has {len(y)} outcomes but the reference has {len(x)}; pair them by prompt")


def _check(resamples: int, level: float) -> None:
    if resamples < 1:
        raise parameter_error("bootstrap", f"must be at least 1, got {resamples}")
    if not 0.0 < level < 1.0:
        raise parameter_error("level", f"must be between 0 and 1, got {level}")


def _resampled_means(columns: Sequence[np.ndarray], resamples: int, seed: int) -> list[np.ndarray]:
    """Means of each column over the same ``resamples`` prompt resamples (index draws seeded by ``seed``)."""
    n = len(columns[0])
    rng = np.random.default_rng(seed)
    out: list[list[np.ndarray]] = [[] for _ in columns]
    for start in range(0, resamples, _CHUNK):
        index = rng.integers(0, n, size=(min(_CHUNK, resamples - start), n))
        for k, column in enumerate(columns):
            out[k].append(column[index].mean(axis=1))
    return [np.concatenate(parts) for parts in out]


def percentile_interval(values: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of ``values`` by the inverted empirical CDF
    (the smallest value whose cumulative share reaches the quantile)."""
    data = np.sort(np.asarray(values, dtype=float))
    alpha = (1.0 - level) / 2.0
    low = data[max(0, math.ceil(alpha * len(data) - 1e-9) - 1)]
    high = data[max(0, math.ceil((1.0 - alpha) * len(data) - 1e-9) - 1)]
    return float(low), float(high)


def bootstrap_ci(
    values: Sequence[float], resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of per-prompt ``values`` (seeded; ``(nan, nan)`` for no values)."""
    _check(resamples, level)
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return math.nan, math.nan
    (means,) = _resampled_means([data], resamples, seed)
    return percentile_interval(means, level)


@dataclass(frozen=True)
class PairedDifference:
    """``diff = mean(condition) - mean(reference)`` on paired prompts, with its paired-bootstrap CI."""

    diff: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict:
        return {"diff": self.diff, "ci_low": self.low, "ci_high": self.high, "n": self.n}


def paired_bootstrap(
    reference: Sequence[float],
    condition: Sequence[float],
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> PairedDifference:
    """Paired bootstrap of the difference of means: both columns are resampled with the same prompt indices."""
    _check(resamples, level)
    _same_length(reference, condition)
    ref = np.asarray(reference, dtype=float)
    cond = np.asarray(condition, dtype=float)
    if ref.size == 0:
        return PairedDifference(math.nan, math.nan, math.nan, 0)
    ref_means, cond_means = _resampled_means([ref, cond], resamples, seed)
    low, high = percentile_interval(cond_means - ref_means, level)
    return PairedDifference(float(cond.mean() - ref.mean()), low, high, int(ref.size))


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (sd 0.0 for fewer than two values; NaNs for none)."""
    if not values:
        return math.nan, math.nan
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
