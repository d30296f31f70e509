"""Pair-level statistics: clusters of identical pairs, sign-flip p-values by hand, percentile intervals."""

from __future__ import annotations

import math

import pytest
import torch

from moeguard import MoeguardError
from moeguard.pair_stats import cluster_ids, cluster_sums, percentile_interval, sign_flip_p_values


def test_cluster_ids_name_the_first_identical_pair():
    assert cluster_ids(["x", "y", "x", "z", "y", "x"]) == [0, 1, 0, 3, 1, 0]
    assert cluster_ids(["a", "b", "c"]) == [0, 1, 2]  # no duplicates: every pair its own cluster
    assert cluster_ids([]) == []


def test_cluster_sums_add_the_members_in_cluster_order():
    values = torch.tensor([[1, 2], [10, 20], [3, 4], [100, 200]])
    assert cluster_sums(values, torch.tensor([0, 1, 0, 3])).tolist() == [[4, 6], [10, 20], [100, 200]]
    assert cluster_sums(torch.tensor([5, 6, 7]), torch.tensor([0, 0, 0])).tolist() == [18]


def test_exact_sign_flip_p_values_by_hand_three_pairs():
    # columns are entries; rows are the 3 pairs' differences
    d = torch.tensor([[0.5, 0.3, 0.0], [0.3, -0.2, 0.0], [0.1, 0.1, 0.0]], dtype=torch.float64)
    p, exact = sign_flip_p_values(d)
    assert exact
    # entry 0: T = .9; the 8 sums are +-.9, +-.7, +-.3, +-.1 -> only + + + and - - - reach .9: 2/8
    # entry 1: T = .2; sums of +-.3 +-.2 +-.1 are +-.6, +-.4, +-.2, 0, 0 -> 6 of 8 reach .2
    # entry 2: all differences 0 -> every sign vector ties: p = 1
    assert p.tolist() == [0.25, 0.75, 1.0]


def test_exact_ties_survive_rounding_four_pairs():
    # d = .1, .2, -.3, .4: T = .4; flipped sets {}, {4}, {1,2,3}, {1,2,3,4} give |T_s| = .4 exactly,
    # {3}, {1,2,4} give 1.0, {1,3}, {2,4} .8, {1,4}, {2,3} .6: 10 of 16. In floating point .1 + .2 - .3 + .4
    # is 0.4000000000000001 but .1 + .2 - .3 - .4 is -0.39999999999999997: the tolerance keeps the ties.
    d = torch.tensor([[0.1], [0.2], [-0.3], [0.4]], dtype=torch.float64)
    assert (0.1 + 0.2 - 0.3 + 0.4) != -(0.1 + 0.2 - 0.3 - 0.4)
    p, exact = sign_flip_p_values(d)
    assert exact and p.item() == 10 / 16


def test_exact_p_value_floor_and_shape():
    # C clusters all pushing the same way: only s = +1 and s = -1 reach |T|, so p = 2 / 2^C
    for c in (1, 2, 6, 16):
        p, exact = sign_flip_p_values(torch.full((c, 2, 3), 0.25))
        assert exact and p.shape == (2, 3)
        assert torch.all(p == 2 / 2**c)


def test_monte_carlo_uses_the_plus_one_correction_and_the_seed():
    # 20 clusters > 16: Monte Carlo. Entry 0: all equal (a draw reaches |T| with chance 2 / 2^20, so b = 0
    # here and p = 1 / (R + 1)); entry 1: all zero (every draw ties, p = (R + 1) / (R + 1) = 1).
    d = torch.stack([torch.full((20,), 0.1), torch.zeros(20), torch.linspace(-0.3, 0.5, 20)], dim=1)
    p, exact = sign_flip_p_values(d.double(), permutations=999, seed=3)
    assert not exact
    assert p[0].item() == 1 / 1000 and p[1].item() == 1.0
    again, _ = sign_flip_p_values(d.double(), permutations=999, seed=3)
    other, _ = sign_flip_p_values(d.double(), permutations=999, seed=4)
    assert torch.equal(p, again)
    assert other[2] != p[2]


def test_monte_carlo_agrees_with_exact_enumeration():
    generator = torch.Generator().manual_seed(0)
    d = torch.randn(17, 5, generator=generator, dtype=torch.float64) + 0.2
    exact_p, exact = sign_flip_p_values(d, exact_max=17)
    mc_p, mc_exact = sign_flip_p_values(d, permutations=20_000, seed=1)
    assert exact and not mc_exact
    standard_error = torch.sqrt(exact_p * (1 - exact_p) / 20_000) + 1e-4
    assert torch.all((mc_p - exact_p).abs() <= 4 * standard_error), (mc_p, exact_p)


def test_sign_flip_rejects_bad_input():
    with pytest.raises(MoeguardError, match="permutations"):
        sign_flip_p_values(torch.ones(3, 1), permutations=0)
    with pytest.raises(MoeguardError, match="at least one pair"):
        sign_flip_p_values(torch.ones(0, 1))


def test_percentile_interval_by_hand():
    # three defined resamples and one undefined (NaN) per entry; quantile positions 0.025 * 2 = 0.05 and
    # 0.975 * 2 = 1.95 between the sorted values (linear interpolation)
    samples = torch.tensor([[0.4, 0.2], [0.1, 0.3], [0.4, 0.2], [math.nan, math.nan]], dtype=torch.float64)
    low, high = percentile_interval(samples)
    assert low.tolist() == pytest.approx([0.1 + 0.05 * 0.3, 0.2])
    assert high.tolist() == pytest.approx([0.4, 0.2 + 0.95 * 0.1])
    low, high = percentile_interval(samples, level=0.5)  # quartiles: positions 0.5 and 1.5
    assert low.tolist() == pytest.approx([0.25, 0.2]) and high.tolist() == pytest.approx([0.4, 0.25])
    low, high = percentile_interval(torch.full((4, 1), math.nan))
    assert math.isnan(low.item()) and math.isnan(high.item())
    with pytest.raises(MoeguardError, match="ci_level"):
        percentile_interval(samples, level=1.0)
