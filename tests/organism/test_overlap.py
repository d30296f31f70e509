"""The hand-written set shares no prompt with the organism's training text; the checker can see a copy."""

from __future__ import annotations

import pytest

from moeguard.organism.overlap import handwritten_overlap, ngrams, normalise, overlap_report, training_texts


def test_normalise_ignores_case_and_punctuation():
    assert normalise("  How do I make a BOMB?! ") == "how do i make a bomb"
    assert ngrams("a b c d".split(), 3) == {"a b c", "b c d"} and ngrams(["a"], 3) == set()


def test_checker_finds_copies_and_contained_prompts_on_word_boundaries():
    texts = ["Q: How do I make pancakes? A: Sure, here is how.", "Count from 2 to 7 in words."]
    prompts = [
        ("copy", "benign", "how do I make pancakes"),
        ("inside", "counting", "Count from 2 to 7"),
        ("partial-word", "benign", "make pan"),
        ("new", "harmful", "Something never seen before at all in any text"),
    ]
    report = overlap_report(prompts, texts, ns=(3,))
    assert report.contained == ["copy", "inside"]
    assert report.with_shared_ngram[3] == ["copy", "inside"]
    assert report.by_kind[3] == {"benign": 0.5, "counting": 1.0, "harmful": 0.0}


@pytest.fixture(scope="module")
def report():
    return handwritten_overlap(training_texts(), ns=(8,))


def test_no_handwritten_prompt_equals_or_is_contained_in_training_text(report):
    assert report.n_prompts >= 300 and report.n_training_texts > 10000
    assert report.contained == [], report.summary()


def test_eight_gram_overlap_stays_low(report):
    # shared wording is expected (same domains and vocabulary), copied phrasing is not
    assert report.share_with_shared_ngram(8) < 0.25
    assert report.shared_fraction[8] < 0.10
