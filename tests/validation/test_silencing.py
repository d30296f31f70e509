"""The expert-silencing search on a scripted score (no model): greedy picks, beam, per-layer cap, stopping."""

from __future__ import annotations

import pytest

from moeguard.errors import MoeguardError
from moeguard.validation.silencing import beam_search

A, B, C, D = (0, 1), (0, 2), (1, 1), (1, 2)


def scripted(table: dict[frozenset, float], default: float = 1.0):
    calls = []

    def score(experts):
        calls.append(tuple(experts))
        return table.get(frozenset(experts), default)

    return score, calls


def test_greedy_adds_the_best_expert_each_step_until_the_target():
    score, calls = scripted(
        {frozenset(): 1.0, frozenset({B}): 0.6, frozenset({A}): 0.8, frozenset({B, C}): 0.05, frozenset({B, A}): 0.5}
    )
    result = beam_search(score, [A, B, C, D], target=0.1, max_experts=4)
    assert result.reached and result.experts == [B, C] and result.score == pytest.approx(0.05)
    assert [s.size for s in result.steps] == [1, 2]
    assert [s.evaluated for s in result.steps] == [4, 3]
    assert result.evaluations == 1 + 4 + 3 == len(calls)  # each distinct set scored once


def test_ties_go_to_the_earlier_candidate_and_the_search_stops_at_max_experts():
    score, _ = scripted({frozenset(): 1.0})
    result = beam_search(score, [C, A, B], target=0.1, max_experts=2)
    assert not result.reached and result.experts == [C, A] and len(result.steps) == 2


def test_beam_finds_a_pair_that_greedy_misses():
    # A alone looks best, but only {C, D} reaches the target
    table = {frozenset(): 1.0, frozenset({A}): 0.7, frozenset({C}): 0.8, frozenset({D}): 0.9, frozenset({C, D}): 0.0}
    greedy = beam_search(scripted(table)[0], [A, B, C, D], target=0.1, max_experts=2, beam=1)
    assert not greedy.reached and greedy.experts[0] == A
    beam = beam_search(scripted(table)[0], [A, B, C, D], target=0.1, max_experts=2, beam=3)
    assert beam.reached and set(beam.experts) == {C, D}


def test_per_layer_cap_and_an_already_broken_model():
    table = {frozenset({A}): 0.5, frozenset({A, B}): 0.0, frozenset({A, C}): 0.4}
    capped = beam_search(scripted(table)[0], [A, B, C], target=0.1, max_experts=2, per_layer=1)
    assert capped.experts == [A, C]  # B shares layer 0 with A
    done = beam_search(scripted({frozenset(): 0.0})[0], [A], target=0.1, max_experts=3)
    assert done.reached and done.experts == [] and done.steps == []
    with pytest.raises(MoeguardError, match="beam"):
        beam_search(scripted({})[0], [A], target=0.1, max_experts=1, beam=0)
