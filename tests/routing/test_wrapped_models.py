"""Wrapped models work everywhere: PEFT (LoRA) models give the results of their merged model for
steering, capture and detection; torch.compile'd models steer and record; base models without an LM head."""

from __future__ import annotations

import copy

import pytest
import torch

from moeguard import RoutingRecorder, SteeringSpec, detect_experts, inspect_moe
from moeguard.data import builtin_pairs
from moeguard.generation import generate
from moeguard.routing import unwrap


@pytest.fixture(scope="module")
def lora_and_merged():
    """The organism with a random (non-zero) LoRA adapter on attention and experts, and its merge."""
    from peft import LoraConfig, get_peft_model

    from moeguard.models import load_model
    from moeguard.safemoe.trainer import lora_targets

    model, tokenizer = load_model("builtin:organism")
    plain = copy.deepcopy(model)
    modules, parameters = lora_targets(model, "all")
    torch.manual_seed(0)
    config = LoraConfig(
        r=4,
        lora_alpha=4,
        target_modules=modules,
        target_parameters=parameters,
        init_lora_weights=False,
        lora_dropout=0.0,
    )
    wrapped = get_peft_model(model, config).eval()
    with torch.no_grad():
        for name, param in wrapped.named_parameters():
            if "lora_B" in name:
                param.mul_(0.5)
    merged = copy.deepcopy(wrapped).merge_and_unload().eval()
    return wrapped, merged, plain, tokenizer


def test_unwrap_sees_through_peft_and_compile(lora_and_merged):
    wrapped, merged, _, _ = lora_and_merged
    base = unwrap(wrapped)
    assert type(base).__name__ == "OlmoeForCausalLM" and base is wrapped.get_base_model()
    compiled = torch.compile(merged, backend="eager")
    assert unwrap(compiled) is merged
    assert inspect_moe(wrapped).layers == inspect_moe(merged).layers == [0, 1, 2, 3]


def test_lora_model_detects_captures_and_steers_like_its_merge(lora_and_merged):
    wrapped, merged, plain, tokenizer = lora_and_merged
    pairs = builtin_pairs("safety", n=16)
    ours, theirs = (detect_experts(m, tokenizer, pairs, bootstrap=0) for m in (wrapped, merged))
    assert torch.equal(ours.counts_a, theirs.counts_a) and torch.equal(ours.counts_b, theirs.counts_b)
    untouched = detect_experts(plain, tokenizer, pairs, bootstrap=0)
    assert not torch.equal(ours.counts_a, untouched.counts_a)  # the adapter is really active
    prompts = ["How do I make a bomb?", "How do I bake bread?", "Count from 3 to 7 in words."]
    spec = SteeringSpec(deactivate=[(layer, e) for layer in range(4) for e in (0, 1, 2)])
    assert generate(wrapped, tokenizer, prompts, steer=spec, max_new_tokens=16) == generate(
        merged, tokenizer, prompts, steer=spec, max_new_tokens=16
    )
    counts = []
    for model in (wrapped, merged):
        recorder = RoutingRecorder(model)
        ids = tokenizer(prompts, return_tensors="pt", padding=True)
        with recorder, spec.apply(model):
            recorder.run(ids["input_ids"], ids["attention_mask"])
        counts.append(recorder.counts)
    assert torch.equal(counts[0], counts[1]) and counts[0][:, :3].sum() == 0


def test_compiled_model_is_steered_and_recorded_and_restored(load_tiny, padded_batch):
    model, _ = load_tiny("olmoe")
    compiled = torch.compile(model, backend="eager")
    ids, mask = padded_batch
    spec = SteeringSpec(deactivate=[(layer, e) for layer in (0, 1, 2) for e in range(4)])
    with torch.no_grad():
        plain = compiled(input_ids=ids, attention_mask=mask).logits  # compiled before moeguard saw it
        with spec.apply(compiled):
            steered = compiled(input_ids=ids, attention_mask=mask).logits
            recorder = RoutingRecorder(compiled)
            with recorder:
                compiled(input_ids=ids, attention_mask=mask)
        after = compiled(input_ids=ids, attention_mask=mask).logits
    assert not torch.allclose(plain, steered)
    assert recorder.tokens == ids.numel() and recorder.counts[:, :4].sum() == 0
    assert torch.equal(plain, after)


def test_base_model_without_lm_head(tiny_model_dir, padded_batch):
    from transformers import AutoModel

    base = AutoModel.from_pretrained(tiny_model_dir("qwen3_moe")).eval()
    assert not hasattr(base, "lm_head")
    moe = inspect_moe(base)
    ids, mask = padded_batch
    recorder = RoutingRecorder(base)
    with recorder, SteeringSpec(activate=[(moe.layers[0], 7)]).apply(base):
        recorder.run(ids, mask)
    assert recorder.counts[0, 7] == int(mask.sum())
