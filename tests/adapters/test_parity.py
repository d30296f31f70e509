"""Every adapter reproduces its model's own routing exactly — the experts and weights the experts module
actually consumes — in float32 and bfloat16, on a padded batch; and finds the right routers."""

from __future__ import annotations

import pytest
import torch
from routing_helpers import experts_inputs

from moeguard import MoeguardError, inspect_moe
from moeguard.routing import RouterHooks
from moeguard.testing import TINY_FAMILIES

EXPECTED_MOE_LAYERS = {"qwen2_moe": [0, 2], "deepseek_v3": [1, 2], "glm4_moe": [1, 2]}


def _check_parity(model, family, ids, mask, dtype_name):
    moe = inspect_moe(model)
    calls = {}
    seen, handles = experts_inputs(model)
    reader = RouterHooks.of(model).add_reader(lambda call: calls.__setitem__(call.layer, call))
    try:
        with torch.no_grad():
            model(input_ids=ids, attention_mask=mask)
    finally:
        reader.remove()
        for handle in handles:
            handle.remove()
    assert sorted(calls) == moe.layers
    for layer, call in calls.items():
        assert not call.edited
        ours_w, ours_i = moe.adapter.route(call.router, call.logits, call.hidden)
        indices, weights = seen[layer]
        indices, weights = indices.reshape(-1, moe.top_k), weights.reshape(-1, moe.top_k)
        assert ours_i.shape == indices.shape == (ids.numel(), moe.top_k)
        assert torch.equal(ours_i, indices), f"{family} {dtype_name} layer {layer}: indices differ"
        assert ours_w.dtype == weights.dtype, f"{family} {dtype_name} layer {layer}: {ours_w.dtype}"
        assert torch.equal(ours_w, weights), f"{family} {dtype_name} layer {layer}: weights differ"


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_route_reproduces_what_the_experts_consume(family, load_tiny, padded_batch):
    model, _ = load_tiny(family)
    assert inspect_moe(model).layers == EXPECTED_MOE_LAYERS.get(family, [0, 1, 2])
    _check_parity(model, family, *padded_batch, "float32")


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_route_is_exact_in_bfloat16(family, load_tiny, padded_batch):
    model, _ = load_tiny(family)
    model = model.to(torch.bfloat16)
    try:
        _check_parity(model, family, *padded_batch, "bfloat16")
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


def test_granitemoeshared_counts_its_shared_mlp(load_tiny):
    """Regression: granitemoeshared declares its shared MLP by shared_intermediate_size (it was reported as 0)."""
    model, _ = load_tiny("granitemoeshared")
    assert model.config.shared_intermediate_size > 0
    assert any("shared_mlp" in name for name, _ in model.named_modules())
    assert inspect_moe(model).summary()["shared_experts"] == 1
    model.config.shared_intermediate_size = 0
    try:
        assert inspect_moe(model).summary()["shared_experts"] == 0
    finally:
        model.config.shared_intermediate_size = 32
