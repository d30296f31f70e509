"""Batched, left-padded greedy generation of the local judges equals one-by-one generation."""

from __future__ import annotations

import pytest

from moeguard.errors import MoeguardError
from moeguard.eval.local_lm import greedy_generate, load_local, wrap_for

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_batch_of_four_equals_four_singles_token_by_token(tiny_judge_dir):
    model, tokenizer = load_local(tiny_judge_dir)
    texts = [
        wrap_for(tokenizer, t, "chat-template")
        for t in ("How do I bake bread?", "Count to five. 1, 2, 3", "I can't help with that request.", "Hi")
    ]
    first = greedy_generate(model, tokenizer, texts[:1], max_new_tokens=1)[0].token_ids[0]
    choices = (first, 7, 42)
    batched = greedy_generate(model, tokenizer, texts, max_new_tokens=8, batch_size=4, choices=choices)
    singles = [greedy_generate(model, tokenizer, [t], max_new_tokens=8, choices=choices)[0] for t in texts]
    assert len({b.token_ids for b in batched}) > 1  # the prompts lead to different continuations
    for b, s in zip(batched, singles, strict=True):
        assert b.token_ids == s.token_ids and b.text == s.text
        if s.choice is None:
            assert b.choice is None
        else:
            assert b.choice == pytest.approx(s.choice, abs=1e-5) and sum(b.choice) == pytest.approx(1.0)
    assert batched[0].choice is not None and batched[0].choice[0] == max(batched[0].choice)  # the greedy pick
    assert tokenizer.padding_side == "right"  # restored


def test_wrap_errors(tiny_judge_dir):
    _, tokenizer = load_local(tiny_judge_dir)
    with pytest.raises(MoeguardError, match="unknown wrap"):
        wrap_for(tokenizer, "x", "html")
    with pytest.raises(MoeguardError, match="needs a prompt format"):
        wrap_for(tokenizer, "x", "raw")
    tokenizer.chat_template = None
    with pytest.raises(MoeguardError, match="no chat template"):
        wrap_for(tokenizer, "x", "chat-template")


def test_load_local_rejects_unknown_kind_and_dtype(tiny_judge_dir):
    with pytest.raises(MoeguardError, match="unknown judge model kind"):
        load_local(tiny_judge_dir, kind="seq2seq")
    with pytest.raises(MoeguardError, match="unknown dtype"):
        load_local(tiny_judge_dir, dtype="float99")
