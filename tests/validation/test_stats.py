"""Hand-computed checks of the validation arithmetic: doses, matched random rankings, the set-level permutation
p-value, leave-one-out attribution and Jaccard overlap."""

from __future__ import annotations

import pytest

from moeguard.errors import MoeguardError
from moeguard.steer import SteeringSpec
from moeguard.validation.stats import (
    Ranked,
    auto_direction,
    beats_all,
    beats_random_from,
    doses_for,
    jaccard,
    loo_attribution,
    loo_summary,
    matched_random_ranking,
    permutation_p,
    ranking_of,
    selection_frequency,
    spec_of,
)


def test_doses_double_then_end_at_the_spec_size():
    assert doses_for(1) == [1]
    assert doses_for(2) == [1, 2]
    assert doses_for(8) == [1, 2, 4, 8]
    assert doses_for(12) == [1, 2, 4, 8, 12]
    assert doses_for(8, [4, 2, 4]) == [2, 4]


def test_doses_outside_the_spec_or_empty_spec_are_refused():
    with pytest.raises(MoeguardError, match=r"doses must lie in 1..3"):
        doses_for(3, [0, 2])
    with pytest.raises(MoeguardError, match="steers no expert"):
        doses_for(0)


def test_permutation_p_counts_ties_against_the_selection():
    # lower: random values <= 0.2 are 0.1 and 0.2 -> (1 + 2) / (4 + 1)
    assert permutation_p(0.2, [0.9, 0.1, 0.2, 0.5], "lower") == pytest.approx(3 / 5)
    # higher: random values >= 0.5 are 0.9 and 0.5 -> (1 + 2) / 5
    assert permutation_p(0.5, [0.9, 0.1, 0.2, 0.5], "higher") == pytest.approx(3 / 5)
    # below every one of 19 random sets: the smallest attainable p, 1/20
    assert permutation_p(0.0, [0.9] * 19, "lower") == pytest.approx(0.05)
    with pytest.raises(MoeguardError, match="direction"):
        permutation_p(0.0, [1.0], "sideways")


def test_beats_all_is_strict_and_direction_follows_the_effect():
    assert beats_all(0.1, [0.2, 0.3], "lower")
    assert not beats_all(0.2, [0.2, 0.3], "lower")
    assert beats_all(0.9, [0.2, 0.3], "higher")
    assert auto_direction(baseline=0.9, full=0.1) == "lower"
    assert auto_direction(baseline=0.1, full=0.4) == "higher"


def test_loo_attribution_is_the_effect_lost():
    # baseline 0.9, full spec 0.1 (effect -0.8); without expert 1: 0.5, without 2: 0.1, without 3: 0.3
    assert loo_attribution(0.1, [0.5, 0.1, 0.3]) == pytest.approx([-0.4, 0.0, -0.2])
    summary = loo_summary(baseline=0.9, full=0.1, dropped=[0.5, 0.1, 0.3])
    assert summary.effect == pytest.approx(-0.8)
    assert summary.attribution_sum == pytest.approx(-0.6)
    assert summary.gap == pytest.approx(0.2)  # redundancy: the attributions miss a quarter of the effect
    assert summary.ratio == pytest.approx(0.75)
    assert loo_summary(0.5, 0.5, [0.5]).ratio is None


def test_jaccard_and_selection_frequency():
    assert jaccard({1, 2, 3}, {2, 3, 4}) == pytest.approx(2 / 4)
    assert jaccard(set(), set()) == 1.0
    assert selection_frequency([{1, 2}, {2}, {2, 3}, {1}]) == {1: 0.5, 2: 0.75, 3: 0.25}


def test_ranking_follows_scores_or_the_spec_order():
    spec = SteeringSpec(activate=[(0, 1)], deactivate=[(1, 2), (1, 3)])
    assert ranking_of(spec) == [Ranked(0, 1, "activate"), Ranked(1, 2, "deactivate"), Ranked(1, 3, "deactivate")]
    by_score = ranking_of(spec, {(0, 1): 0.1, (1, 2): -0.2, (1, 3): 0.5})
    assert [(r.layer, r.expert) for r in by_score] == [(1, 3), (1, 2), (0, 1)]
    rebuilt = spec_of(by_score[:2], like=spec)
    assert rebuilt.activate == [] and rebuilt.deactivate == [(1, 3), (1, 2)]


def test_matched_random_ranking_keeps_layers_and_roles_at_every_prefix():
    ranked = [
        Ranked(2, 14, "deactivate"),
        Ranked(3, 0, "deactivate"),
        Ranked(2, 10, "deactivate"),
        Ranked(0, 1, "activate"),
    ]
    for seed in range(20):
        random_ranking = matched_random_ranking(ranked, 16, seed)
        assert [(r.layer, r.role) for r in random_ranking] == [(r.layer, r.role) for r in ranked]
        layer2 = [r.expert for r in random_ranking if r.layer == 2]
        assert len(set(layer2)) == 2 and all(0 <= e < 16 for e in layer2)
    assert matched_random_ranking(ranked, 16, 3) == matched_random_ranking(ranked, 16, 3)
    assert any(matched_random_ranking(ranked, 16, s) != matched_random_ranking(ranked, 16, 0) for s in range(1, 5))


def test_beats_random_from_is_the_start_of_the_last_unbroken_run_of_wins():
    doses = [1, 2, 4, 8]
    assert beats_random_from(doses, [False, True, True, True]) == 2
    assert beats_random_from(doses, [True, False, True, True]) == 4  # a loss at 2 breaks the run
    assert beats_random_from(doses, [True, True, True, True]) == 1
    assert beats_random_from(doses, [True, True, True, False]) is None  # no win at the full size
    assert beats_random_from([], []) is None
    with pytest.raises(MoeguardError, match="3 doses but 2"):
        beats_random_from([1, 2, 3], [True, True])
