"""Paired data: file formats, one-line errors, and exact target-span location by tokenizer offsets."""

from __future__ import annotations

import csv
import json

import pytest

from moeguard import MoeguardError
from moeguard.builtin import available
from moeguard.data import (
    Pair,
    encode_side,
    format_conversation,
    hub_pairs,
    locate_span,
    pair_from_record,
    pairs_sha256,
    read_pairs,
)
from moeguard.testing import train_test_tokenizer


def conversation(user: str, assistant: str | None = None) -> list[dict[str, str]]:
    messages = [{"role": "user", "content": user}]
    if assistant is not None:
        messages.append({"role": "assistant", "content": assistant})
    return messages


RECORDS = [
    {
        "messages_a": conversation("Count to five.", "1, 2, 3, 4, 5."),
        "messages_b": conversation("Count to five.", "one, two, three, four, five."),
    },
    {
        "messages_a": conversation("Bake bread?", "Sure, here is how."),
        "messages_b": conversation("Bake bread?", "I can't help with that request."),
        "target_a": "Sure",
        "id": 7,
    },  # extra fields are ignored
]


@pytest.fixture(scope="module")
def tokenizer():
    return train_test_tokenizer()


def write_jsonl(path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


def write_csv(path, records) -> str:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["messages_a", "messages_b", "target_a", "target_b"])
        for r in records:
            writer.writerow(
                [json.dumps(r["messages_a"]), json.dumps(r["messages_b"]), r.get("target_a", ""), r.get("target_b", "")]
            )
    return str(path)


# ------------------------------------------------------------------------------------------ reading
def test_jsonl_pairs_default_to_the_last_assistant_message(tmp_path):
    pairs = read_pairs(write_jsonl(tmp_path / "p.jsonl", RECORDS))
    assert len(pairs) == 2
    assert pairs[0].target("a") == "1, 2, 3, 4, 5."
    assert pairs[0].target("b") == "one, two, three, four, five."
    assert pairs[1].target("a") == "Sure"  # explicit
    assert pairs[1].target("b") == "I can't help with that request."
    assert pairs[1].origin.endswith("p.jsonl:2")


def test_last_assistant_message_not_the_first(tmp_path):
    messages = conversation("Hi", "first reply") + conversation("Again", "second reply")
    pair = pair_from_record({"messages_a": messages, "messages_b": messages}, "pair 0")
    assert pair.target("a") == "second reply"


def test_csv_pairs_parse_json_cells_and_treat_empty_targets_as_default(tmp_path):
    pairs = read_pairs(write_csv(tmp_path / "p.csv", RECORDS))
    assert pairs == read_pairs(write_jsonl(tmp_path / "p.jsonl", RECORDS))
    assert pairs[0].target_a is None and pairs[1].target_a == "Sure" and pairs[1].target_b is None


def test_hash_ignores_file_format_and_extra_fields(tmp_path):
    from_csv = read_pairs(write_csv(tmp_path / "p.csv", RECORDS))
    from_jsonl = read_pairs(write_jsonl(tmp_path / "p.jsonl", RECORDS))
    assert pairs_sha256(from_csv) == pairs_sha256(from_jsonl)
    assert pairs_sha256(from_csv) != pairs_sha256(from_csv[:1])


def test_json_array_file_and_max_pairs(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(RECORDS), encoding="utf-8")
    assert len(read_pairs(str(path))) == 2
    assert read_pairs(str(path), max_pairs=1) == read_pairs(str(path))[:1]


def test_explicit_target_needs_no_assistant_turn():
    record = {
        "messages_a": conversation("say yes"),
        "messages_b": conversation("say no"),
        "target_a": "yes",
        "target_b": "no",
    }
    assert pair_from_record(record, "pair 0").target("b") == "no"


B = RECORDS[0]["messages_b"]
BAD_JSONL = [
    ("", "has no pairs"),
    ("\n\n", "has no pairs"),
    (json.dumps(RECORDS[0]) + "\n{not json\n", "p.jsonl:2: not valid JSON"),
    (json.dumps({"messages_a": RECORDS[0]["messages_a"]}), "missing field(s) messages_b"),
    (json.dumps({"messages_a": "hello", "messages_b": B}), "'messages_a' must be a non-empty list"),
    (json.dumps({"messages_a": [], "messages_b": B}), "'messages_a' must be a non-empty list"),
    (json.dumps({"messages_a": [{"role": "user"}], "messages_b": B}), "'role' and 'content'"),
    (json.dumps({"messages_a": conversation("hi"), "messages_b": B}), "messages_a has no assistant turn"),
    (json.dumps({**RECORDS[0], "target_b": ""}), "'target_b' must be a non-empty string"),
    (json.dumps({**RECORDS[0], "target_a": 3}), "'target_a' must be a non-empty string"),
    (json.dumps([1, 2]), "expected an object"),
]


@pytest.mark.parametrize(("content", "message"), BAD_JSONL)
def test_bad_jsonl_is_a_one_line_error(tmp_path, content, message):
    path = tmp_path / "p.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(MoeguardError) as err:
        read_pairs(str(path))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_csv_inputs(tmp_path):
    no_column = tmp_path / "a.csv"
    no_column.write_text("messages_a,target_a\n[],x\n", encoding="utf-8")
    with pytest.raises(MoeguardError, match="lacks column.*messages_b"):
        read_pairs(str(no_column))
    bad_cell = tmp_path / "b.csv"
    good = [json.dumps(RECORDS[0]["messages_a"]), json.dumps(RECORDS[0]["messages_b"])]
    with open(bad_cell, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerows([["messages_a", "messages_b"], good, [good[0], "[{oops"]])
    with pytest.raises(MoeguardError, match=r"b\.csv:3: column messages_b is not a JSON message list"):
        read_pairs(str(bad_cell))


def test_missing_sources(tmp_path):
    with pytest.raises(MoeguardError, match="does not exist"):
        read_pairs(str(tmp_path / "nope.jsonl"))
    with pytest.raises(MoeguardError, match="is a folder"):
        read_pairs(str(tmp_path))
    with pytest.raises(MoeguardError, match="max_pairs must be at least 1"):
        read_pairs(str(tmp_path / "x.jsonl"), max_pairs=0)


@pytest.fixture
def reachable_hub(monkeypatch):
    """Pretend the hub answers the reachability probe (the datasets call itself is faked per test)."""
    import moeguard.hub

    monkeypatch.setattr(moeguard.hub, "hub_problem", lambda timeout=None: None)


def test_unreachable_hub_fails_fast_in_one_line():
    import time

    started = time.perf_counter()
    with pytest.raises(MoeguardError) as err:
        read_pairs("someone/pairs")
    assert time.perf_counter() - started < 10
    assert "cannot reach the Hugging Face hub" in str(err.value) and "\n" not in str(err.value)


def test_hub_unreachable_is_one_line(monkeypatch, reachable_hub):
    import datasets

    def offline(name, split=None):
        raise ConnectionError(f"Couldn't reach '{name}' on the Hub (OfflineModeIsEnabled)\nmore detail")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(MoeguardError) as err:
        read_pairs("someone/pairs")
    assert "could not load dataset 'someone/pairs'" in str(err.value)
    assert "OfflineModeIsEnabled" in str(err.value) and "\n" not in str(err.value)


def test_hub_dataset_rows_become_pairs(monkeypatch, reachable_hub):
    import datasets

    calls = []

    def fake(name, split=None):
        calls.append((name, split))
        return [dict(r) for r in RECORDS * 3]

    monkeypatch.setattr(datasets, "load_dataset", fake)
    pairs = hub_pairs("someone/pairs:test", max_pairs=3)
    assert calls == [("someone/pairs", "test")]
    assert len(pairs) == 3 and pairs[2].target("a") == "1, 2, 3, 4, 5."
    assert read_pairs("someone/pairs", max_pairs=2) == pairs[:2]
    assert calls[-1] == ("someone/pairs", "train")


def test_builtin_pair_sets():
    with pytest.raises(MoeguardError, match="unknown built-in pair set.*available: builtin:"):
        read_pairs("builtin:no-such-set")
    for name in ("safety", "digits-vs-words", "faithfulness"):
        assert f"builtin:{name}" in available("pairs")
        pairs = read_pairs(f"builtin:{name}", max_pairs=3)
        assert len(pairs) == 3
        assert all(p.target("a") and p.target("b") for p in pairs)


# ------------------------------------------------------------------------------------------ spans
def span_positions(encoded) -> list[int]:
    return [i for i, inside in enumerate(encoded.span_mask) if inside]


def test_span_is_exactly_the_assistant_reply_with_chat_template(tokenizer):
    pair = pair_from_record(RECORDS[0], "pair 0")
    encoded = encode_side(tokenizer, pair, "a", 0)
    assert encoded.text == "<|user|>\nCount to five.<|end|>\n<|assistant|>\n1, 2, 3, 4, 5.<|end|>\n"
    # <|user|> \n Count ␣to ␣five . <|end|> \n <|assistant|> \n  -> the reply starts at token 10;
    # '1' ',' '␣2' ',' '␣3' ',' '␣4' ',' '␣5' '.' are 10 tokens, then <|end|>
    assert span_positions(encoded) == list(range(10, 20))
    assert tokenizer.decode(encoded.input_ids[10:20]) == "1, 2, 3, 4, 5."
    special = {tokenizer.convert_tokens_to_ids(t) for t in ("<|end|>", "<|assistant|>", "<|user|>")}
    assert not any(encoded.input_ids[i] in special for i in span_positions(encoded))
    assert encoded.input_ids[20] == tokenizer.convert_tokens_to_ids("<|end|>")
    assert encoded.input_ids[8] == tokenizer.convert_tokens_to_ids("<|assistant|>")


def test_span_occurring_twice_uses_the_last_occurrence(tokenizer):
    messages = conversation("Repeat: 1, 2, 3, 4, 5.", "1, 2, 3, 4, 5.")
    text = format_conversation(tokenizer, messages)
    first, last = text.find("1, 2, 3, 4, 5."), text.rfind("1, 2, 3, 4, 5.")
    assert first < last
    encoded = locate_span(tokenizer, text, "1, 2, 3, 4, 5.", "pair 0")
    assert encoded.char_span == (last, last + len("1, 2, 3, 4, 5."))
    positions = span_positions(encoded)
    assistant = encoded.input_ids.index(tokenizer.convert_tokens_to_ids("<|assistant|>"))
    assert positions == list(range(assistant + 2, assistant + 12))


def test_token_straddling_the_span_boundary_is_included(tokenizer):
    text = format_conversation(tokenizer, RECORDS[0]["messages_a"])
    # target "2, 3" starts inside the token '␣2' (chars ' 2'): tokens '␣2' ',' '␣3' overlap it
    encoded = locate_span(tokenizer, text, "2, 3", "pair 0")
    assert span_positions(encoded) == [12, 13, 14]
    assert tokenizer.decode(encoded.input_ids[12:15]) == " 2, 3"


def test_span_without_chat_template_and_zero_width_bos_is_excluded():
    from tokenizers.processors import TemplateProcessing

    plain = train_test_tokenizer()
    plain.chat_template = None
    bos = plain.convert_tokens_to_ids("<|endoftext|>")
    plain._tokenizer.post_processor = TemplateProcessing(
        single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", bos)]
    )
    messages = conversation("Say 1, 2, 3, 4, 5.", "1, 2, 3, 4, 5.")
    text = format_conversation(plain, messages)
    assert text == "Say 1, 2, 3, 4, 5.\n1, 2, 3, 4, 5."
    encoded = locate_span(plain, text, "1, 2, 3, 4, 5.", "pair 0")
    assert encoded.input_ids[0] == bos  # added BOS (offsets (0, 0)) is present but never counted
    assert not encoded.span_mask[0]
    positions = span_positions(encoded)
    assert tokenizer_decode(plain, encoded, positions) == "1, 2, 3, 4, 5."
    assert positions[-1] == len(encoded.input_ids) - 1
    # the whole-conversation target includes the first token but still not the BOS
    whole = locate_span(plain, text, text, "pair 0")
    assert span_positions(whole) == list(range(1, len(whole.input_ids)))


def tokenizer_decode(tok, encoded, positions) -> str:
    return tok.decode([encoded.input_ids[i] for i in positions])


def test_target_with_outer_whitespace_falls_back_to_the_stripped_text(tokenizer):
    text = format_conversation(tokenizer, RECORDS[0]["messages_a"])
    encoded = locate_span(tokenizer, text, "  1, 2, 3, 4, 5.  ", "pair 0")
    assert span_positions(encoded) == list(range(10, 20))


def test_missing_span_names_the_pair(tokenizer):
    pair = pair_from_record({**RECORDS[0], "target_b": "seven"}, "p.jsonl:4")
    encode_side(tokenizer, pair, "a", 3)  # side A is fine
    with pytest.raises(MoeguardError) as err:
        encode_side(tokenizer, pair, "b", 3)
    assert "pair 3 (p.jsonl:4), side B" in str(err.value) and "'seven'" in str(err.value)


def test_slow_tokenizer_is_refused(tokenizer):
    class Slow:
        is_fast = False
        chat_template = None

    with pytest.raises(MoeguardError, match="not a fast tokenizer"):
        locate_span(Slow(), "abc", "b")


def test_pair_is_plain_data():
    pair = Pair(conversation("a", "b"), conversation("a", "c"))
    assert pair.to_dict() == {"messages_a": conversation("a", "b"), "messages_b": conversation("a", "c")}
