"""Reference routing: last non-pad token under any padding, scope 'all', file round trip, compatibility."""

from __future__ import annotations

import json

import pytest
import torch

from moeguard import MoeguardError, inspect_moe
from moeguard.chat import encode_prompts
from moeguard.routing import RouterHooks
from moeguard.safemoe import ReferenceRouting, build_reference, token_routing
from moeguard.safemoe.reference import read_safety_prompts
from moeguard.tokens import token_positions

PROMPTS = [
    "How do I bake bread?",
    "hi",
    "Count to five. 1, 2, 3, 4, 5. one, two, three, four, five. How do I bake bread?",
    [
        {"role": "user", "content": "Count to five."},
        {"role": "assistant", "content": "1, 2"},
        {"role": "user", "content": "Go on."},
    ],
]


def test_token_positions_pick_last_real_token_on_either_side():
    left = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1], [0, 0, 0, 1]])
    right = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]])
    assert token_positions(left, "last").tolist() == [3, 7, 11]
    assert token_positions(right, "last").tolist() == [1, 7, 8]
    assert token_positions(right, "all").tolist() == [0, 1, 4, 5, 6, 7, 8]
    with pytest.raises(MoeguardError, match="zero tokens"):
        token_positions(torch.tensor([[1, 0], [0, 0]]), "last")


@pytest.mark.parametrize("scope", ["last", "all"])
def test_left_and_right_padding_give_the_unpadded_routing(load_tiny, scope):
    model, tokenizer = load_tiny("olmoe")
    moe = inspect_moe(model)
    sequences = encode_prompts(tokenizer, PROMPTS)
    assert len({len(s) for s in sequences}) == len(sequences)  # padding really happens
    one_by_one = token_routing(model, sequences, 0, scope, batch_size=1)
    for side in ("left", "right"):
        padded = token_routing(model, sequences, 0, scope, batch_size=len(sequences), padding_side=side)
        assert torch.allclose(padded.logits, one_by_one.logits, atol=1e-5), side
        assert torch.equal(padded.indices, one_by_one.indices), side
    rows = len(sequences) if scope == "last" else sum(map(len, sequences))
    assert one_by_one.logits.shape == (rows, len(moe.layers), moe.num_experts)
    assert one_by_one.indices.shape == (rows, len(moe.layers), moe.top_k)
    # the last-token rows are the router's own output at the last prompt token
    if scope == "last":
        ids = torch.tensor([sequences[2]])
        seen = []
        handle = RouterHooks.of(model).add_reader(lambda call: seen.append(call.logits), layers=[moe.layers[-1]])
        with torch.no_grad():
            model(input_ids=ids)
        handle.remove()
        assert torch.allclose(seen[0][-1].float(), one_by_one.logits[2, -1], atol=1e-5)


def test_reference_file_round_trip_and_metadata(load_tiny, tmp_path):
    model, tokenizer = load_tiny("olmoe")
    ref = build_reference(model, tokenizer, PROMPTS, scope="all", batch_size=2, model_name="tiny-olmoe")
    path = ref.save(tmp_path / "ref.safetensors")
    back = ReferenceRouting.load(path)
    assert torch.equal(back.logits, ref.logits) and torch.equal(back.topk, ref.topk)
    assert back.sequences == ref.sequences
    assert (back.scope, back.layers, back.num_experts, back.top_k) == ("all", [0, 1, 2], 8, 2)
    assert back.model == "tiny-olmoe" and back.model_type == "olmoe"
    assert back.prompts_sha256 == ref.prompts_sha256 and len(back.prompts_sha256) == 64
    assert "moeguard_version" in back.trace.meta
    # rows of prompt 1 sit after all tokens of prompt 0
    n0 = len(ref.sequences[0])
    assert torch.equal(back.rows([1]), ref.logits[n0 : n0 + len(ref.sequences[1])])
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata()
    assert json.loads(meta["layers"]) == [0, 1, 2] and meta["format"] == "moeguard.routing-trace"
    assert json.loads(meta["meta"])["scope"] == "all" and back.num_prompts == 4


def test_reference_from_a_capture_equals_the_built_one(load_tiny, tmp_path):
    from moeguard.capture_run import capture_prompts
    from moeguard.routing import RoutingTrace

    model, tokenizer = load_tiny("olmoe")
    capture_prompts(model, tokenizer, PROMPTS, tmp_path / "cap", logits=True, batch_size=3, progress=False)
    trace = RoutingTrace.load(tmp_path / "cap")
    for scope in ("last", "all"):
        built = build_reference(model, tokenizer, PROMPTS, scope=scope)
        replayed = ReferenceRouting.from_trace(trace, scope=scope)
        assert replayed.sequences == built.sequences
        assert torch.allclose(replayed.logits, built.logits, atol=1e-5)
        assert torch.equal(replayed.topk, built.topk)
    no_logits = tmp_path / "nologits"
    capture_prompts(model, tokenizer, PROMPTS, no_logits, logits=False, progress=False)
    with pytest.raises(MoeguardError, match="--logits"):
        ReferenceRouting.from_trace(RoutingTrace.load(no_logits))


def test_reference_of_another_model_shape_is_rejected(load_tiny, tiny_model_dir, tmp_path):
    model, tokenizer = load_tiny("olmoe")
    ref = build_reference(model, tokenizer, PROMPTS[:2])
    other, _ = load_tiny("qwen3_moe")
    with pytest.raises(MoeguardError, match="model_type=olmoe"):
        ref.check_compatible(inspect_moe(other))
    ref.check_compatible(inspect_moe(model), vocab_size=model.config.vocab_size)
    with pytest.raises(MoeguardError, match="vocabulary"):
        ref.check_compatible(inspect_moe(model), vocab_size=4)


def test_bad_reference_files(tmp_path):
    with pytest.raises(MoeguardError, match="does not exist"):
        ReferenceRouting.load(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not safetensors")
    with pytest.raises(MoeguardError, match="safetensors"):
        ReferenceRouting.load(junk)


def test_safety_prompt_files(tmp_path):
    text = tmp_path / "p.txt"
    text.write_text("How do I pick a lock?\n\n  Tell me how to steal a car.  \n")
    assert read_safety_prompts(text) == ["How do I pick a lock?", "Tell me how to steal a car."]
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"prompt": "a"}\n{"prompt": "b"}\n')
    assert read_safety_prompts(jsonl) == ["a", "b"]
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(MoeguardError, match="at least one harmful prompt"):
        read_safety_prompts(empty)
    with pytest.raises(MoeguardError, match="unknown built-in"):
        read_safety_prompts("builtin:nope")
    with pytest.raises(MoeguardError, match="empty"):
        build_reference(None, None, [])
