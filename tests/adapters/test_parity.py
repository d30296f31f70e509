"""Every adapter reproduces its model's own routing exactly — the experts and weights the experts module
actually consumes — in float32 and bfloat16 (reloaded with ``from_pretrained(dtype=...)``), on a padded
batch, for every supported model type; and finds the right routers."""

from __future__ import annotations

import pytest
import torch
from routing_helpers import experts_inputs, kind_of

from moeguard import MoeguardError, inspect_moe
from moeguard.routing import RouterHooks
from moeguard.testing import TINY_TYPES

#: MoE decoder layers of the tiny configs that are not all of [0, 1, 2].
EXPECTED_MOE_LAYERS = {
    "qwen2_moe": [0, 2],
    "jamba": [1, 3],
    "longcat_flash": [0, 1],
    "nemotron_h": [1],
    "nemotron_h_omni": [1],
    "nemo_speechlm": [1],
}
#: Types whose tiny config starts with one dense layer.
DENSE_FIRST = {
    "afmoe",
    "axk1",
    "axk2",
    "bailing_hybrid",
    "beam",
    "deepseek_ocr2",
    "deepseek_v2",
    "deepseek_v3",
    "deepseek_v32",
    "dots1",
    "dots3_note",
    "dots3_note_text",
    "ernie4_5_moe",
    "ernie4_5_vl_moe",
    "exaone_moe",
    "flint",
    "glm4_moe",
    "glm4_moe_lite",
    "glm4v_moe",
    "glm5_next",
    "glm_moe_dsa",
    "hy_v3",
    "hy_v4",
    "hy_v4_vl",
    "kimi_k25",
    "kimi_linear",
    "laguna",
    "lfm2_moe",
    "mimo_v2_flash",
    "mistral4",
    "mistral_large4",
    "sarvam_mla",
    "sarvam_moe",
    "step3p7",
    "unlimited_ocr",
}


def expected_layers(model_type: str) -> list[int]:
    return EXPECTED_MOE_LAYERS.get(model_type, [1, 2] if model_type in DENSE_FIRST else [0, 1, 2])


def same(ours: torch.Tensor, theirs: torch.Tensor) -> bool:
    return ours.shape == theirs.shape and ours.dtype == theirs.dtype and torch.equal(ours, theirs)


def check_parity(model, ids, mask, label: str) -> None:
    """``adapter.route`` on every router call equals what that layer's experts consumed."""
    moe = inspect_moe(model)
    kind = kind_of(model.config.model_type)
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
        weights, indices = moe.adapter.route(call.router, call.logits, call.hidden, call.extra)
        got = seen[layer]
        where = f"{label} layer {layer}"
        if kind == "dense":  # Llama-4: the experts ran on hidden × dense scores
            dense = torch.zeros_like(call.logits).scatter_(1, indices, weights)
            hidden = call.hidden.reshape(-1, call.hidden.shape[-1])
            routed_in = hidden.repeat(moe.num_experts, 1) * dense.transpose(0, 1).reshape(-1, 1)
            assert same(routed_in, got.routed_in), f"{where}: experts' input differs"
            assert torch.equal(got.selected, dense != 0), f"{where}: selection differs"
            continue
        assert indices.shape == (ids.numel(), moe.top_k), where
        assert same(indices, got.indices), f"{where}: indices differ"
        if kind == "keys":  # Doge: the weights only exist inside the block; recompute its output with ours
            block = moe.adapter.parent(call.router)
            h = got.block_input
            n = h.shape[0] * h.shape[1]
            down, up = block.down_embed(indices), block.up_embed(indices)
            mixed = block.act_fn(torch.matmul(down, h.view(n, -1, 1)).view(n, -1)) * weights
            routed = torch.matmul(mixed.view(n, 1, -1), up).view(*h.shape[:2], -1)
            shared = block.down_proj(block.act_fn(block.gate_proj(h)) * block.up_proj(h))
            assert same(shared + routed, got.block_output), f"{where}: block output differs"
            continue
        if kind == "skip":  # ZAYA: the experts see a skip as weight 0 (moeguard's index E)
            weights = weights.masked_fill(indices == moe.num_experts - 1, 0)
        if kind == "zero":  # LongCat: the block adds hidden × (zero experts' weight); the experts see weight 0
            routed = moe.adapter.parent(call.router).num_routed_experts
            identity = weights.masked_fill(indices < routed, 0.0).sum(dim=-1, keepdim=True)
            out = got.experts_output
            assert same(out + (got.hidden * identity).to(out.dtype), got.block_output), f"{where}: identity differs"
            weights = weights.masked_fill(indices >= routed, 0.0)
        assert same(weights, got.weights), f"{where}: weights differ ({weights.dtype} vs {got.weights.dtype})"
        if kind == "plan":  # JetMoE: the experts got the tokens of the plan, in its order
            hidden = call.hidden.reshape(-1, call.hidden.shape[-1])
            assert same(hidden[got.plan[1]], got.expert_inputs), f"{where}: experts' inputs differ"
            assert got.expert_size == torch.bincount(indices.flatten(), minlength=moe.num_experts).tolist()
        gammas = getattr(got, "gammas", None)
        if gammas is not None:  # Inkling: the shared experts' gammas come from the same softmax
            assert same(call.router(call.hidden)[3], gammas), f"{where}: shared gammas differ"


@pytest.mark.parametrize("model_type", TINY_TYPES)
def test_route_reproduces_what_the_experts_consume(model_type, reloaded, padded_batch):
    model = reloaded(model_type, "float32")
    assert inspect_moe(model).layers == expected_layers(model_type)
    check_parity(model, *padded_batch, f"{model_type} float32")


@pytest.mark.parametrize("model_type", TINY_TYPES)
def test_route_is_exact_in_bfloat16(model_type, reloaded, padded_batch):
    model = reloaded(model_type, "bfloat16")
    assert model.get_input_embeddings().weight.dtype == torch.bfloat16
    check_parity(model, *padded_batch, f"{model_type} bfloat16")


def test_unsupported_model_names_class_and_supported_list():
    from transformers import LlamaConfig, LlamaForCausalLM

    model = LlamaForCausalLM(
        LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    )
    with pytest.raises(MoeguardError) as err:
        inspect_moe(model)
    message = str(err.value)
    assert "LlamaForCausalLM" in message and "olmoe" in message and "--allow-unregistered" in message
    assert "\n" not in message


def test_summary_reports_shared_experts(load_tiny):
    assert inspect_moe(load_tiny("qwen2_moe")[0]).summary()["shared_experts"] == 1
    assert inspect_moe(load_tiny("deepseek_v3")[0]).summary()["shared_experts"] == 1
    summary = inspect_moe(load_tiny("olmoe")[0]).summary()
    assert summary["shared_experts"] == 0 and summary["experts"] == 8 and summary["top_k"] == 2


@pytest.mark.parametrize(
    "model_type, shared",
    [("aria", 2), ("ernie4_5_vl_moe", 2), ("llama4", 1), ("step3p7", 1), ("nemotron_h", 1), ("mixtral", 0)],
)
def test_shared_experts_of_composite_and_other_keys(model_type, shared, reloaded):
    assert inspect_moe(reloaded(model_type)).shared_experts == shared


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


@pytest.mark.parametrize(
    "model_type, path, router",
    [
        ("qwen3_vl_moe", "model.language_model.layers", "mlp.gate"),
        ("qwen3_omni_moe", "model.language_model.layers", "mlp.gate"),  # loaded as its thinker
        ("nemotron_h_omni", "language_model.model.layers", "mixer.gate"),
        ("dbrx", "transformer.blocks", "ffn.router"),
        ("jetmoe", "model.layers", "mlp.router"),  # not self_attention.experts.router
        ("ernie4_5_vl_moe", "model.language_model.layers", "mlp.text_moe.gate"),  # not mlp.vision_moe.gate
        ("gemma4", "model.language_model.layers", "router"),  # a child of the decoder layer
        ("doge", "model.layers", "mlp.router_gate"),
    ],
)
def test_decoder_layers_and_routers_are_found_where_the_architecture_keeps_them(model_type, path, router, reloaded):
    model = reloaded(model_type)
    moe = inspect_moe(model)
    names = {id(m): n for n, m in model.named_modules()}
    layer = moe.layers[-1]
    assert names[id(moe.routers[layer])] == f"{path}.{layer}.{router}"
