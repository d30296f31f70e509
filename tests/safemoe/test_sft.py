"""Fine-tuning data: assistant-only labels, tokenisation as at inference, one-line data errors."""

from __future__ import annotations

import pytest

from moeguard import MoeguardError
from moeguard.chat import format_prompt
from moeguard.safemoe import SFTCollator, SFTDataset, encode_conversation, read_sft_file
from moeguard.safemoe.sft import IGNORE_INDEX
from moeguard.testing import train_test_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return train_test_tokenizer()


def test_labels_cover_exactly_the_assistant_reply(tokenizer):
    messages = [
        {"role": "user", "content": "Count to five."},
        {"role": "assistant", "content": "1, 2, 3, 4, 5"},
    ]
    encoded = encode_conversation(tokenizer, messages)
    prompt_ids = tokenizer(format_prompt(tokenizer, "Count to five."), add_special_tokens=False)["input_ids"]
    n = len(prompt_ids)
    # the prompt part is tokenised exactly as generate() tokenises the prompt
    assert encoded["input_ids"][:n] == prompt_ids
    assert encoded["labels"][:n] == [IGNORE_INDEX] * n
    target = encoded["labels"][n:]
    assert IGNORE_INDEX not in target
    assert tokenizer.decode(target) == "1, 2, 3, 4, 5<|end|>\n"


def test_multi_turn_trains_every_assistant_turn_only(tokenizer):
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Sure."},
        {"role": "user", "content": "Count to two."},
        {"role": "assistant", "content": "1, 2"},
    ]
    encoded = encode_conversation(tokenizer, messages)
    trained = [t for t, label in zip(encoded["input_ids"], encoded["labels"], strict=True) if label != IGNORE_INDEX]
    assert tokenizer.decode(trained) == "Sure.<|end|>\n1, 2<|end|>\n"


def test_collator_pads_right_with_ignored_labels(tokenizer):
    items = [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [8]}]
    batch = SFTCollator(pad_id=0)(items)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def test_data_files_and_errors(tmp_path, tokenizer):
    good = tmp_path / "d.jsonl"
    good.write_text(
        '{"prompt": "a", "response": "b"}\n\n'
        '{"messages": [{"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}], '
        '"source": "task"}\n'
    )
    conversations = read_sft_file(good)
    assert conversations[0] == [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    assert conversations[1][1]["content"] == "d"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "only a prompt"}\n')
    with pytest.raises(MoeguardError, match=r"bad.jsonl:1: expected"):
        read_sft_file(bad)
    no_assistant = tmp_path / "na.jsonl"
    no_assistant.write_text('{"messages": [{"role": "user", "content": "x"}]}\n')
    with pytest.raises(MoeguardError, match="no assistant message"):
        read_sft_file(no_assistant)
    with pytest.raises(MoeguardError, match="does not exist"):
        read_sft_file(tmp_path / "missing.jsonl")
    with pytest.raises(MoeguardError, match="max_length"):
        SFTDataset(tokenizer, conversations, max_length=3)
