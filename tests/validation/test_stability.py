"""Selection stability on hand-made per-pair counts: re-selection on resamples and disjoint halves."""

from __future__ import annotations

import torch

from moeguard.detect import DetectionResult
from moeguard.steer import SteeringSpec
from moeguard.validation.stability import SelectionRule, selection_stability, subset


def _result(pairs: int, flip_expert_3_in_half: bool = False) -> DetectionResult:
    # 1 layer, 4 experts, 10 tokens per side per pair; side A routes expert 0 on every token, side B expert 1
    counts_a = torch.zeros(pairs, 1, 4, dtype=torch.long)
    counts_b = torch.zeros(pairs, 1, 4, dtype=torch.long)
    counts_a[:, 0, 0] = 10
    counts_b[:, 0, 1] = 10
    if flip_expert_3_in_half:  # half the pairs make expert 2 A-linked, the other half expert 3
        counts_a[: pairs // 2, 0, 2] = 6
        counts_a[pairs // 2 :, 0, 3] = 6
    tokens = torch.full((pairs,), 10)
    return DetectionResult.from_pairs([0], 4, 2, counts_a, tokens, counts_b, tokens)


def test_rule_is_inferred_from_the_spec_signs():
    result = _result(6)
    assert SelectionRule.infer(SteeringSpec(deactivate=[(0, 0)]), result) == SelectionRule(0, 1, True)
    assert SelectionRule.infer(SteeringSpec(activate=[(0, 0)]), result) == SelectionRule(1, 0, False)


def test_a_clear_selection_is_stable_everywhere():
    report = selection_stability(_result(8), SteeringSpec(deactivate=[(0, 0)]), resamples=5, splits=3)
    assert report.spec_vs_full == 1.0
    assert report.resample_jaccard == [1.0] * 5 and report.half_jaccard == [1.0] * 3
    assert report.resample_frequency == {(0, 0, "deactivate"): 1.0}


def test_halves_that_disagree_show_up():
    result = _result(8, flip_expert_3_in_half=True)
    spec = SteeringSpec(activate=[(0, 0), (0, 2)])  # top-2 A-linked on all pairs: expert 0 and (tie) 2
    report = selection_stability(result, spec, resamples=0, splits=20)
    assert min(report.half_jaccard) < 1.0  # some split puts the expert-2 pairs and the expert-3 pairs apart
    assert report.half_frequency[(0, 0, "activate")] == 1.0


def test_subset_repeats_pairs():
    result = _result(3)
    doubled = subset(result, [0, 0, 1])
    assert doubled.tokens_a == 30 and int(doubled.counts_a[0, 0]) == 30
