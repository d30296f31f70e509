"""Hand-computed checks of the exact McNemar test and the bootstrap intervals."""

from __future__ import annotations

import math

import pytest

from moeguard.errors import MoeguardError
from moeguard.eval.stats import (
    bootstrap_ci,
    mcnemar,
    mcnemar_exact,
    mean_sd,
    paired_bootstrap,
    percentile_interval,
)


@pytest.mark.parametrize(
    ("b", "c", "p"),
    [
        (0, 0, 1.0),  # no discordant pairs
        (0, 5, 2 / 32),  # 2 * P(X <= 0), X ~ Bin(5, 1/2) = 2 * 1/32
        (1, 5, 2 * (1 + 6) / 64),  # 2 * (C(6,0) + C(6,1)) / 2^6 = 0.21875
        (2, 8, 2 * (1 + 10 + 45) / 1024),  # 2 * 56/1024 = 0.109375
        (3, 3, 1.0),  # 2 * P(X <= 3), X ~ Bin(6, 1/2) = 2 * 42/64 > 1, capped
        (0, 10, 2 / 1024),
    ],
)
def test_mcnemar_exact_is_the_two_sided_binomial_tail(b, c, p):
    assert mcnemar_exact(b, c) == pytest.approx(p, abs=1e-15)
    assert mcnemar_exact(c, b) == pytest.approx(p, abs=1e-15)  # symmetric


def test_mcnemar_counts_discordant_pairs_by_direction():
    reference = [1, 1, 1, 1, 0, 0, 1, 0]
    condition = [0, 0, 0, 1, 1, 0, 1, 0]
    result = mcnemar(reference, condition)
    assert (result.b, result.c) == (3, 1)  # ref 1 -> cond 0 three times, ref 0 -> cond 1 once
    assert result.p == pytest.approx(2 * (1 + 4) / 16)  # 0.625
    with pytest.raises(MoeguardError, match="pair them by prompt"):
        mcnemar([1, 0], [1])


def test_percentile_interval_uses_the_inverted_empirical_cdf():
    # 40 values 1..40: the 2.5% quantile is the 1st value (ceil(1.0) = 1), the 97.5% one the 39th.
    assert percentile_interval(list(range(1, 41)), 0.95) == (1.0, 39.0)
    # 10 values: 0.05 * 10 = 0.5 -> 1st value; 0.95 * 10 = 9.5 -> 10th value
    assert percentile_interval([5, 3, 1, 2, 4, 9, 8, 7, 6, 10], 0.90) == (1.0, 10.0)
    assert percentile_interval(list(range(1, 21)), 0.90) == (1.0, 19.0)  # 0.05*20 = 1 -> 1st; 0.95*20 = 19


def test_bootstrap_ci_matches_the_exact_bootstrap_distribution():
    # One success in ten: a resample's mean is K/10 with K ~ Bin(10, 0.1). P(K = 0) = 0.349 > 0.025, so the
    # lower bound is 0; P(K <= 2) = 0.930 < 0.975 <= P(K <= 3) = 0.987, so the upper bound is 0.3.
    assert bootstrap_ci([0.0] * 9 + [1.0], resamples=4000, seed=0) == (0.0, 0.3)
    assert bootstrap_ci([0.0] * 9 + [1.0], resamples=4000, seed=0) == bootstrap_ci([0.0] * 9 + [1.0], 4000, seed=0)
    assert bootstrap_ci([1.0] * 7, resamples=50) == (1.0, 1.0)
    assert all(math.isnan(v) for v in bootstrap_ci([], resamples=10))
    with pytest.raises(MoeguardError, match="bootstrap must be at least 1"):
        bootstrap_ci([1.0], resamples=0)


def test_bootstrap_ci_is_seeded():
    values = [0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 1] * 3
    assert bootstrap_ci(values, 300, seed=1) == bootstrap_ci(values, 300, seed=1)
    runs = {bootstrap_ci(values, 300, seed=s) for s in range(6)}
    assert len(runs) > 1


def test_paired_bootstrap_resamples_pairs_together():
    # Identical columns: every resampled difference is exactly 0 (unpaired resampling would not give that).
    same = [0, 1, 1, 0, 1]
    result = paired_bootstrap(same, same, resamples=500)
    assert (result.diff, result.low, result.high, result.n) == (0.0, 0.0, 0.0, 5)
    # A constant shift of one on every prompt: the difference is 1 in every resample.
    shifted = paired_bootstrap([0, 0, 0, 0], [1, 1, 1, 1], resamples=200)
    assert (shifted.diff, shifted.low, shifted.high) == (1.0, 1.0, 1.0)
    # diff = mean(condition) - mean(reference) = 0.25 - 0.75
    mixed = paired_bootstrap([1, 1, 1, 0], [0, 0, 1, 0], resamples=2000, seed=0)
    assert mixed.diff == -0.5 and mixed.low <= -0.5 <= mixed.high and mixed.high <= 0.0


def test_mean_sd_is_the_sample_standard_deviation():
    assert mean_sd([0.9, 0.95, 1.0]) == pytest.approx((0.95, 0.05))
    assert mean_sd([0.5]) == (0.5, 0.0)
