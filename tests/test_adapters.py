"""Every adapter reproduces its model's own router output exactly, and finds the right routers."""

from __future__ import annotations

import pytest
import torch

from moeguard import MoeguardError, inspect_moe
from moeguard.testing import TINY_FAMILIES

EXPECTED_MOE_LAYERS = {"qwen2_moe": [0, 2], "deepseek_v3": [1, 2], "glm4_moe": [1, 2]}


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_route_reproduces_router_output_exactly(family, load_tiny, padded_batch):
    model, _ = load_tiny(family)
    moe = inspect_moe(model)
    assert moe.layers == EXPECTED_MOE_LAYERS.get(family, [0, 1, 2])
    seen = {}

    def keep(layer):
        def hook(module, args, output):
            seen[layer] = (args[0], output)

        return hook

    handles = [moe.routers[layer].register_forward_hook(keep(layer)) for layer in moe.layers]
    ids, mask = padded_batch
    with torch.no_grad():
        model(input_ids=ids, attention_mask=mask)
    for handle in handles:
        handle.remove()
    assert sorted(seen) == moe.layers
    for layer, (hidden, (logits, weights, indices)) in seen.items():
        ours_w, ours_i = moe.adapter.route(moe.routers[layer], logits, hidden)
        assert ours_i.shape == indices.shape == (ids.numel(), moe.top_k)
        assert torch.equal(ours_i, indices), f"{family} layer {layer}: indices differ"
        assert ours_w.dtype == weights.dtype
        assert torch.equal(ours_w, weights), f"{family} layer {layer}: weights differ"


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_route_is_exact_in_bfloat16(family, load_tiny, padded_batch):
    model, _ = load_tiny(family)
    model = model.to(torch.bfloat16)
    try:
        moe = inspect_moe(model)
        layer = moe.layers[-1]
        seen = []
        handle = moe.routers[layer].register_forward_hook(lambda m, a, o: seen.append((a[0], o)))
        with torch.no_grad():
            model(input_ids=padded_batch[0], attention_mask=padded_batch[1])
        handle.remove()
        hidden, (logits, weights, indices) = seen[0]
        ours_w, ours_i = moe.adapter.route(moe.routers[layer], logits, hidden)
        assert torch.equal(ours_i, indices) and torch.equal(ours_w, weights)
    finally:
        model.to(torch.float32)


def test_unsupported_model_names_class_and_supported_list():
    from transformers import LlamaConfig, LlamaForCausalLM

    model = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2))
    with pytest.raises(MoeguardError) as err:
        inspect_moe(model)
    message = str(err.value)
    assert "LlamaForCausalLM" in message and "olmoe" in message and "\n" not in message


def test_summary_reports_shared_experts(load_tiny):
    assert inspect_moe(load_tiny("qwen2_moe")[0]).summary()["shared_experts"] == 1
    assert inspect_moe(load_tiny("deepseek_v3")[0]).summary()["shared_experts"] == 1
    summary = inspect_moe(load_tiny("olmoe")[0]).summary()
    assert summary["shared_experts"] == 0 and summary["experts"] == 8 and summary["top_k"] == 2
