"""Phrasing surfaces of training requests: what they rewrite, what they keep, and that they stay off the
hand-written held-out set."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from moeguard.eval.organism_judge import parse_count_request
from moeguard.organism import corpus, surfaces


def test_misspell_makes_one_edit_and_leaves_short_or_odd_words():
    rng = random.Random(0)
    for word in ("poison", "neighbour", "kitchen", "password", "explain"):
        typos = {surfaces.misspell(rng, word) for _ in range(30)}
        assert len(typos - {word}) >= 5, typos
        assert all(abs(len(t) - len(word)) <= 1 and t[-1] == word[-1] for t in typos), typos
    assert surfaces.misspell(rng, "gun") == "gun" and surfaces.misspell(rng, "C++!") == "C++!"


def test_rephrase_reaches_every_kind_and_keeps_the_task():
    rng = random.Random(1)
    task = "poison my neighbour's dog"
    prompt = f"How do I {task}?"
    seen = Counter()
    for _ in range(400):
        text = surfaces.rephrase(rng, prompt, task)
        if task in text or prompt in text:
            seen["clean"] += 1
        else:  # only typos may garble the task
            assert len(text.split()) == len(prompt.split()), text
            seen["typo"] += text.lower() != prompt.lower()
    assert seen["clean"] > 250 and seen["typo"] > 40, seen


@pytest.fixture(scope="module")
def plain_and_surfaced():
    return corpus.training_conversations(0, 3000), corpus.training_conversations(0, 3000, surface_share=0.5)


def test_surfaces_rewrite_the_given_share_of_user_turns_and_never_an_answer(plain_and_surfaced):
    plain, surfaced = plain_and_surfaced
    assert corpus.training_conversations(0, 3000, surface_share=0.0) == plain
    changed = 0
    for a, b in zip(plain, surfaced, strict=True):
        assert a[1] == b[1]
        changed += a[0]["content"] != b[0]["content"]
    assert 0.42 < changed / len(plain) < 0.55, changed


def test_harmful_and_benign_requests_get_the_same_surfaces(plain_and_surfaced):
    plain, surfaced = plain_and_surfaced
    harmful = {c[1]["content"] for c in corpus.training_conversations(0, 3000) if _is_refusal(c[1]["content"])}
    marks = {"roleplay": "Pretend you are", "polite": "Kindly tell me", "indirect": "A friend wants to know"}
    found = {kind: Counter() for kind in marks}
    for a, b in zip(plain, surfaced, strict=True):
        for kind, mark in marks.items():
            if mark in b[0]["content"] and mark not in a[0]["content"]:
                found[kind]["harmful" if a[1]["content"] in harmful else "other"] += 1
    for kind, counts in found.items():
        assert counts["harmful"] >= 3 and counts["other"] >= 3, (kind, counts)


def _is_refusal(answer: str) -> bool:
    return any(answer.startswith(opener.split("{")[0][:12]) for opener in corpus.REFUSAL_OPENERS)


def test_counting_requests_keep_their_range_through_every_surface():
    rng = random.Random(2)
    numbers = frozenset(corpus.NUMBER_WORDS)
    for _ in range(300):
        item = corpus.counting_request(rng, cue="")
        wrapped = surfaces.wrap(rng, item.prompt, protect=numbers)
        assert _numbers(wrapped) == _numbers(item.prompt), (item.prompt, wrapped)
        if wrapped.lower() == item.prompt.lower():
            continue
        if wrapped.lower().startswith("count from"):  # the judge still reads the range
            assert parse_count_request(wrapped) == parse_count_request(item.prompt), wrapped


def _numbers(text: str) -> list[str]:
    words = (w.strip(".,?!:").lower() for w in text.split())
    return [w for w in words if w.isdigit() or w in corpus.NUMBER_WORDS]


def test_document_formats_keep_document_and_question():
    rng = random.Random(3)
    doc, question = "The Bilo River is 75 miles long.", "How long is the Bilo River?"
    formats = set()
    for _ in range(200):
        text = surfaces.document_prompt(rng, doc, question)
        assert doc in text and ("ow long is the Bilo River?" in text)
        formats.add(text.split(doc)[0])
    assert len(formats) >= 6


def test_surfaced_corpus_never_contains_a_handwritten_prompt():
    from moeguard.organism.overlap import handwritten_overlap, training_texts
    from moeguard.organism.train import OrganismConfig

    report = handwritten_overlap(training_texts(OrganismConfig(surface_share=0.5)), ns=(8,))
    assert report.contained == [], report.summary()
    assert report.share_with_shared_ngram(8) < 0.25, report.summary()


def test_surface_kinds_and_request_surfaces_limit_what_is_rewritten(plain_and_surfaced):
    plain, _ = plain_and_surfaced
    only_counting = corpus.training_conversations(0, 3000, surface_share=0.5, surface_kinds=("counting",))
    typos_only = corpus.training_conversations(
        0, 3000, surface_share=0.5, surface_kinds=corpus.REQUEST_KINDS, request_surfaces=("typo",)
    )
    counts = Counter()
    for a, b, c in zip(plain, only_counting, typos_only, strict=True):
        counting = parse_count_request(a[0]["content"]) is not None and "Document:" not in a[0]["content"]
        if b[0] != a[0]:
            assert counting, (a[0]["content"], b[0]["content"])
            counts["counting rewritten"] += 1
        counts["counting"] += counting
        if c[0] != a[0]:  # only requests, and only typos: the words stay in place, no wrapper is added
            assert not counting, c[0]["content"]
            assert len(c[0]["content"].split()) == len(a[0]["content"].split()), c[0]["content"]
            counts["typo"] += 1
    assert 0.35 < counts["counting rewritten"] / counts["counting"] < 0.65, counts
    assert counts["typo"] > 300, counts


def test_training_data_keeps_forum_questions_plain_without_a_request_kind():
    from moeguard.organism.train import OrganismConfig, training_data

    plain = training_data(OrganismConfig(n_chat=200, n_pretrain=400)).plain
    documents = training_data(
        OrganismConfig(n_chat=200, n_pretrain=400, surface_share=0.5, surface_kinds=("document",))
    ).plain
    everything = training_data(OrganismConfig(n_chat=200, n_pretrain=400, surface_share=0.5)).plain
    assert documents == plain
    assert sum(a != b for a, b in zip(plain, everything, strict=True)) > 50


def test_config_rejects_unknown_surface_names():
    from moeguard.errors import MoeguardError
    from moeguard.organism.train import OrganismConfig

    with pytest.raises(MoeguardError, match="unknown surface kinds poetry"):
        OrganismConfig(surface_kinds=("counting", "poetry"))
    with pytest.raises(MoeguardError, match="unknown request surfaces rhyme"):
        OrganismConfig(request_surfaces=("rhyme",))
