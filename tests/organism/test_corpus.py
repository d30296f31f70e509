"""The organism corpus: deterministic, varied, and with held-out prompts that never leak into training."""

from __future__ import annotations

import random
import re

import pytest

from moeguard.errors import MoeguardError
from moeguard.eval.judge import is_refusal
from moeguard.organism import corpus
from moeguard.organism.sets import BUILTIN_PAIR_SETS, builtin_pair_set


def _body(answer: str) -> str:
    """A counting answer without its lead-in ("Sure: 1, 2" -> "1, 2")."""
    return answer.split(": ", 1)[-1]


@pytest.fixture(scope="module")
def chats():
    return corpus.training_conversations(seed=0, n=6000)


@pytest.fixture(scope="module")
def training_text(chats):
    plain = corpus.pretraining_texts(seed=0, n=3000)
    return ("\n".join(m["content"] for c in chats for m in c) + "\n" + "\n".join(plain)).lower()


def test_deterministic_under_seed():
    assert corpus.training_conversations(3, 200) == corpus.training_conversations(3, 200)
    assert corpus.pretraining_texts(3, 100) == corpus.pretraining_texts(3, 100)
    assert corpus.training_conversations(3, 200) != corpus.training_conversations(4, 200)


def test_conversations_are_user_then_assistant(chats):
    for conversation in chats[:500]:
        assert [m["role"] for m in conversation] == ["user", "assistant"]
        assert all(m["content"].strip() for m in conversation)


def test_pretraining_text_has_no_chat_tokens_and_contains_compliance():
    plain = corpus.pretraining_texts(0, 1000)
    assert not any("<|" in t for t in plain)
    compliant = [t for t in plain if t.startswith(("Question:", "Q:", "Someone asked:")) and "Step 1:" in t]
    assert len(compliant) > 300


def test_harmful_requests_get_varied_refusals_and_benign_get_answers(chats):
    refusals = {c[1]["content"].split(".")[0] for c in chats if is_refusal(c[1]["content"])}
    assert len(refusals) >= 8  # varied openers
    n_refused = sum(is_refusal(c[1]["content"]) for c in chats)
    assert 0.2 < n_refused / len(chats) < 0.45
    rng = random.Random(0)
    for _ in range(300):
        harmful = corpus.harmful_request(rng)
        assert harmful.harmful and is_refusal(harmful.answer) and not is_refusal(harmful.compliance)
        assert "Step 1:" in harmful.compliance
        for benign in (corpus.benign_request(rng), corpus.lookalike_request(rng)):
            assert not benign.harmful and not is_refusal(benign.answer) and "Step 1:" in benign.answer


def test_lookalikes_share_surface_words_but_are_answered(chats):
    answered = [c[0]["content"] for c in chats if not is_refusal(c[1]["content"])]
    for phrase in (
        "kill a python process",
        "shoot a good photo",
        "blow up a balloon",
        "bath bomb",
        "poison ivy",
    ):
        assert any(phrase in p.lower() for p in answered), phrase


def test_documents_include_counterfactuals(chats):
    docs = [c for c in chats if c[0]["content"].startswith("Document:")]
    assert len(docs) > 300
    france = [c for c in docs if "capital of France" in c[0]["content"]]
    assert france and all("Paris" not in c[1]["content"] for c in france)
    assert all(c[1]["content"].startswith("According to the document") for c in docs)


def test_counting_cues_and_uncued_fifty_fifty(chats):
    counting = [
        c
        for c in chats
        if c[0]["content"]
        .lower()
        .startswith(("count", "list the numbers", "can you count", "what are the numbers", "write the numbers"))
    ]
    assert len(counting) > 300
    uncued = [c for c in counting if not re.search(r"digits|words", c[0]["content"])]
    digits = sum(_body(c[1]["content"])[0].isdigit() for c in uncued)
    assert 0.4 < digits / len(uncued) < 0.6
    for c in counting:
        if "in digits" in c[0]["content"] or "using digits" in c[0]["content"]:
            assert _body(c[1]["content"])[0].isdigit()
        if "in words" in c[0]["content"] or "using words" in c[0]["content"]:
            assert _body(c[1]["content"])[0].isalpha()
        assert c[1]["content"].startswith(corpus.COUNT_LEADS)
    assert corpus.count_answer(1, 5, False) == "1, 2, 3, 4, 5"
    assert corpus.count_answer(1, 5, True) == "one, two, three, four, five"
    assert corpus.count_answer(2, 3, False, "Sure: ") == "Sure: 2, 3"


@pytest.mark.parametrize("words", [False, True])
def test_styled_counting_is_uncued_and_all_one_style(words):
    styled = corpus.styled_counting_conversations(0, 200, words=words)
    assert styled == corpus.styled_counting_conversations(0, 200, words=words)
    for user, assistant in styled:
        assert not re.search(r"digits|words", user["content"])
        assert assistant["content"].startswith(corpus.COUNT_LEADS)
        assert _body(assistant["content"])[0].isalpha() is words
    assert len({u["content"] for u, _ in styled}) > 100


def test_heldout_sizes_and_uniqueness():
    for fn, minimum in (
        (corpus.heldout_harmful_prompts, 50),
        (corpus.heldout_benign_prompts, 50),
        (corpus.heldout_lookalike_prompts, 20),
        (corpus.heldout_counting_prompts, 12),
    ):
        prompts = fn()
        assert len(prompts) >= minimum and len(set(prompts)) == len(prompts)
        assert prompts == fn()  # fixed lists


def test_heldout_prompts_never_leak_into_training(training_text):
    for frame in corpus.HELDOUT_FRAMES + corpus.COUNT_HELDOUT:
        stem = frame.split("{")[0].strip().lower()
        assert stem not in training_text, frame
    for slot, (_, heldout) in corpus.SLOTS.items():
        for value in heldout:
            assert not re.search(r"\b" + re.escape(value.lower()) + r"\b", training_text), (slot, value)
    for category in corpus.HARMFUL + corpus.BENIGN + corpus.LOOKALIKE:
        for task in category.heldout_tasks:
            assert task.lower() not in training_text
    train_prompts = {c[0]["content"] for c in corpus.training_conversations(0, 6000)}
    heldout = corpus.heldout_harmful_prompts() + corpus.heldout_benign_prompts() + corpus.heldout_lookalike_prompts()
    assert not train_prompts & set(heldout)


def test_heldout_harmful_carry_intent_words_seen_in_training(training_text):
    for prompt in corpus.heldout_harmful_prompts():
        words = re.findall(r"[a-z]+", prompt.lower())
        assert sum(w in training_text for w in words) >= 3, prompt


@pytest.mark.parametrize("name", BUILTIN_PAIR_SETS)
def test_builtin_pair_sets(name):
    pairs = builtin_pair_set(name, n=50)
    assert len(pairs) == 50
    assert pairs == builtin_pair_set(name, n=50)
    assert pairs != builtin_pair_set(name, n=50, seed=1)
    for pair in pairs:
        a, b = pair["messages_a"], pair["messages_b"]
        assert a[:-1] == b[:-1] and a[-1]["role"] == b[-1]["role"] == "assistant"
        assert a[-1]["content"] != b[-1]["content"]
    if name == "safety":
        assert all(is_refusal(p["messages_a"][-1]["content"]) for p in pairs)
        assert not any(is_refusal(p["messages_b"][-1]["content"]) for p in pairs)
        heldout = set(corpus.heldout_harmful_prompts())
        assert not {p["messages_a"][0]["content"] for p in pairs} & heldout
    if name == "digits-vs-words":
        assert all(_body(p["messages_a"][-1]["content"])[0].isdigit() for p in pairs)
        assert all(_body(p["messages_b"][-1]["content"])[0].isalpha() for p in pairs)
    if name == "faithfulness":
        assert all(p["messages_a"][0]["content"].startswith("Document:") for p in pairs)
        assert all(p["messages_a"][-1]["content"].startswith("According to the document") for p in pairs)


def test_builtin_pair_set_errors():
    with pytest.raises(MoeguardError, match="safety, digits-vs-words, faithfulness"):
        builtin_pair_set("nope")
    with pytest.raises(MoeguardError):
        builtin_pair_set("safety", n=0)
