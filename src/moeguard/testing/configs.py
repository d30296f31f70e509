"""Tiny configs of the real transformers config classes, for every MoE language-model type moeguard covers.

``tiny_config_for(model_type)`` returns a config with ~3 decoder layers, hidden size 32, 8 routed experts,
top-2 (where the family allows), vocabulary 512. Vision/audio towers of composite models are shrunk to one
tiny layer so that building and a text-only forward pass stay cheap.

The shrinking is generic (only keys the config class declares are set: ``TEXT_COMMON``, ``TOWER_COMMON``,
``TOP_COMMON``), with explicit per-type overrides (``TEXT_OVERRIDES``, ``TOWER_OVERRIDES``, ``TOP_OVERRIDES``)
for everything MoE-relevant (layer patterns, groups, dense prefixes) and for transformers 5.24 bugs
(commented). ``spread_routing_buffers(model)`` fills selection biases and hash tables that init leaves at 0.
"""

from __future__ import annotations

import copy

#: Text-model sizes shared by every type (set only when the config class declares the key).
TEXT_COMMON: dict = dict(
    vocab_size=512,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=8,
    max_position_embeddings=256,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=1,
    tie_word_embeddings=False,
    # experts
    num_experts=8,
    num_local_experts=8,
    n_routed_experts=8,
    moe_num_experts=8,
    num_experts_per_tok=2,
    num_experts_per_token=2,
    top_k_experts=2,
    moe_topk=2,
    moe_k=2,
    moe_intermediate_size=32,
    shared_expert_intermediate_size=32,
    shared_intermediate_size=32,
    expert_ffn_hidden_size=32,
    moe_hidden_size=32,
    moe_shared_expert_intermediate_size=32,
    share_expert_dim=32,
    shared_experts_intermediate_size=32,
    dense_intermediate_size=64,
    intermediate_size_mlp=64,
    prefix_dense_intermediate_size=64,
    ffn_hidden_size=64,
    # group-limited routing: 4 groups of 2 experts, 2 groups per token
    n_group=4,
    topk_group=2,
    num_expert_group=4,
    # multi-head latent attention
    kv_lora_rank=16,
    q_lora_rank=16,
    qk_rope_head_dim=8,
    qk_nope_head_dim=8,
    v_head_dim=8,
    qk_head_dim=16,
    # sparse-attention indexers
    index_head_dim=16,
    index_n_heads=2,
    index_topk=16,
    # linear attention / gated delta net
    linear_num_value_heads=4,
    linear_num_key_heads=2,
    linear_key_head_dim=8,
    linear_value_head_dim=8,
    linear_conv_kernel_dim=4,
    linear_head_dim=8,
    linear_num_heads=4,
    # mamba
    mamba_n_heads=4,
    mamba_d_head=16,
    mamba_d_state=8,
    mamba_n_groups=1,
    mamba_chunk_size=16,
    mamba_d_conv=4,
    mamba_expand=2,
    mamba_num_heads=4,
    mamba_head_dim=16,
    ssm_state_size=8,
    n_groups=1,
    chunk_size=16,
    mamba_dt_rank=4,
    # misc attention
    sliding_window=16,
    sliding_window_size=16,
    attention_chunk_size=16,
    swa_num_attention_heads=4,
    swa_num_key_value_heads=2,
    swa_head_dim=8,
    num_sliding_attention_heads=4,
    kv_channels=8,
    num_nextn_predict_layers=0,
    # large per-model tables
    unpadded_vocab_size=512,
    rel_extent=64,
    vocab_size_per_layer_input=512,
    hidden_size_per_layer_input=8,
)

#: Per text-config ``model_type``: explicit keys applied after TEXT_COMMON (layer patterns, dense prefixes, ...).
TEXT_OVERRIDES: dict[str, dict] = {
    "afmoe": dict(num_dense_layers=1),
    # hybrid linear-attention models: at least one full-attention layer (the cache needs one for its length)
    "bailing_hybrid": dict(
        first_k_dense_replace=1,
        mlp_layer_types=["dense", "sparse", "sparse"],
        layer_types=["linear_attention", "linear_attention", "full_attention"],
    ),
    "granitemoehybrid": dict(layer_types=["linear_attention", "full_attention", "linear_attention"]),
    "kimi_linear": dict(layer_types=["linear_attention", "linear_attention", "full_attention"]),
    "qwen3_5_moe_text": dict(layer_types=["linear_attention", "linear_attention", "full_attention"]),
    "qwen4_exp_text": dict(
        layer_types=["linear_attention", "linear_attention", "indexed_attention"],
        indexer_n_heads=2,
        indexer_kv_heads=1,
        indexer_head_dim=16,
        indexer_budget=8,
        indexer_compress_ratio=2,
        hc_lowrank=8,
        ngram_vocab_size_base=512,
    ),
    "beam": dict(mlp_layer_types=["dense", "sparse", "sparse"]),
    "dbrx": dict(
        d_model=32,
        n_heads=4,
        n_layers=3,
        max_seq_len=256,
        # transformers 5.24 reads attn_config.rope_theta (not a declared field) and clamps with
        # clip_qkv even when it is None: both must be given for the model to build and run
        attn_config=dict(kv_n_heads=2, rope_theta=10000.0, clip_qkv=8.0),
        ffn_config=dict(ffn_hidden_size=64, moe_num_experts=8, moe_top_k=2),
    ),
    "deepseek_v2": dict(first_k_dense_replace=1, topk_method="group_limited_greedy"),
    "deepseek_v3": dict(first_k_dense_replace=1),
    "deepseek_v32": dict(first_k_dense_replace=1, mlp_layer_types=["dense", "sparse", "sparse"]),
    "deepseek_v4": dict(mlp_layer_types=["hash_moe", "moe", "moe"]),
    "doge": dict(is_moe=True, num_experts=64, num_experts_per_tok=2),  # product keys: experts = keys**2
    # [text experts, vision experts]; multimodal rope sections must fit head_dim 8
    "ernie4_5_vl_moe_text": dict(
        moe_intermediate_size=[32, 32],
        rope_parameters=dict(rope_type="default", rope_theta=500000.0, mrope_section=[1, 1, 2]),
    ),
    "glm4v_moe_text": dict(
        rope_parameters=dict(
            rope_type="default", rope_theta=10000.0, partial_rotary_factor=0.5, mrope_section=[1, 0, 1]
        )
    ),
    "hy_v4_vl_text": dict(rope_parameters=dict(rope_type="default", rope_theta=10000.0, mrope_section=[2, 1, 1])),
    # DSA (indexed) layers must be NoPE; one indexed layer so that the cache has an attention layer
    "glm5_next_text": dict(
        qk_rope_head_dim=0,
        layer_types=["linear_attention", "linear_attention", "indexed_attention"],
        mlp_layer_types=["dense", "sparse", "sparse"],
    ),
    "deepseek_ocr2_text": dict(mlp_layer_types=["dense", "sparse", "sparse"]),
    "unlimited_ocr_text": dict(mlp_layer_types=["dense", "sparse", "sparse"]),
    "dots1": dict(n_shared_experts=1, first_k_dense_replace=1),
    # MLA with kv heads == heads; the sliding-attention layers take their sizes from swa_* kwargs
    "dots3_note_text": dict(
        num_key_value_heads=4,
        swa_num_attention_heads=4,
        swa_num_key_value_heads=4,
        swa_q_lora_rank=16,
        swa_kv_lora_rank=16,
        swa_head_dim=16,
        swa_qk_nope_head_dim=8,
        swa_v_head_dim=8,
    ),
    "flint": dict(mlp_only_layers=[0]),
    "gemma4_text": dict(enable_moe_block=True),
    "glm_moe_dsa": dict(first_k_dense_replace=1, mlp_layer_types=["dense", "sparse", "sparse"]),
    "jamba": dict(
        num_hidden_layers=4, expert_layer_period=2, expert_layer_offset=1, attn_layer_period=2, attn_layer_offset=1
    ),
    "lfm2_moe": dict(num_dense_layers=1, layer_types=["conv", "full_attention", "conv"]),
    "longcat_flash": dict(num_layers=2, zero_expert_num=2, num_key_value_heads=4),  # 2 layers = 4 sub-layers
    "mistral4": dict(first_k_dense_replace=1),
    "qwen2_moe": dict(mlp_only_layers=[1], norm_topk_prob=False),
    "qwen3_next": dict(layer_types=["linear_attention", "linear_attention", "full_attention"]),
    "step3p5": dict(mlp_layer_types=["dense", "sparse", "sparse"]),  # default: MoE from layer 3 on
    "zaya": dict(num_experts_per_tok=1, router_hidden_size=16),  # ZAYA validates num_experts_per_tok == 1
}

#: Sizes declared by composite (top-level) configs: projector widths.
TOP_COMMON: dict = dict(out_hidden_size=32, projector_hidden_size=32, projection_hidden_dim=32)

#: Per composite ``model_type``: keys of the top-level config (besides its sub-configs).
TOP_OVERRIDES: dict[str, dict] = {
    # the talker (a second, speech MoE) and code2wav are not the language model: leave them out
    "qwen3_omni_moe": dict(enable_audio_output=False),
    # transformers 5.24: the thinker's rope-index code reads config.vision_start_token_id, which only the talker
    # config declares; standalone thinker forward fails without it (id outside the tiny vocabulary)
    "qwen3_omni_moe_thinker": dict(vision_start_token_id=600),
}

#: Per tower (vision/audio/...) sub-config ``model_type``: keys applied after TOWER_COMMON.
TOWER_OVERRIDES: dict[str, dict] = {
    # dots3 note's vision encoder is itself an MoE ("pyramid" of routed layers): one sparse layer of 4 experts
    "dots3_note_vision_encoder": dict(pyramid_num_routed=[4]),
    "radio": dict(video_temporal_patch_size=2, max_img_size=256),  # nemotron_h_omni vision tower
    "muse_spark_vision": dict(patch_sizes=[16], hidden_sizes=[32], depths=[1]),
    "muse_spark_audio": dict(patch_sizes=[16], hidden_sizes=[32], depths=[1]),
    "unlimited_ocr_sam_vision_model": dict(mlp_dim=64, output_channels=32, image_size=256),
    # Inkling's vision tower assigns patch scales to layers; with fewer layers than scales it imports scipy
    # (linear_sum_assignment): 2x2 patches, 2 frames and 3 layers need none
    "inkling_vision": dict(patch_size=2, temporal_patch_size=2, num_hidden_layers=3),
    "deepseek_ocr2_sam_vision_model": dict(mlp_dim=64, output_channels=32, image_size=256),
}

#: Sub-config sizes for vision/audio towers of composite models.
TOWER_COMMON: dict = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=1,
    depth=1,
    num_attention_heads=2,
    num_heads=2,
    num_key_value_heads=2,
    head_dim=16,
    encoder_layers=1,
    encoder_attention_heads=2,
    encoder_ffn_dim=64,
    d_model=32,
    num_local_experts=4,
    moe_intermediate_size=32,
    out_hidden_size=32,
    output_dim=32,
    vision_output_dim=32,
    projector_input_dim=32,
    projector_output_dim=32,
    adapter_out_dim=32,
    adapter_in_dim=32,
    adapter_input_size=32,
    downsample_hidden_size=16,
    text_hidden_size=32,
    audio_hidden_size=32,
    num_position_embeddings=64,
)


def _config_class(model_type: str):
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    return CONFIG_MAPPING[model_type]


def _declared_keys(cls) -> set[str]:
    fields = getattr(cls, "__dataclass_fields__", None)
    if fields:
        return set(fields)
    return set(cls().to_dict())


def _shrunk(cls, common: dict, overrides: dict) -> dict:
    keys = _declared_keys(cls)
    kwargs = {k: v for k, v in common.items() if k in keys}
    kwargs.update(copy.deepcopy(overrides))
    return kwargs


def text_kwargs(text_model_type: str) -> dict:
    """Keyword arguments of the tiny text config of ``text_model_type``."""
    cls = _config_class(text_model_type)
    common = dict(TEXT_COMMON)
    if "kv_lora_rank" in _declared_keys(cls):
        common["num_key_value_heads"] = common["num_attention_heads"]  # multi-head latent attention: no GQA
    return _shrunk(cls, common, TEXT_OVERRIDES.get(text_model_type, {}))


def _sub_config_classes(cls) -> dict[str, type]:
    """Sub-config classes of a composite config class; AutoConfig slots resolve through the default instance."""
    subs = getattr(cls, "sub_configs", None) or {}
    out: dict[str, type] = {}
    default = None
    for name, spec in subs.items():
        sub_cls = getattr(spec, "config_class", spec)
        if sub_cls is None or sub_cls.__name__ == "AutoConfig":
            if default is None:
                default = cls()
            value = getattr(default, name, None)
            sub_cls = type(value) if value is not None else None
        if sub_cls is not None:
            out[name] = sub_cls
    return out


def _tiny_kwargs(cls, role: str) -> dict:
    """Keyword arguments for a tiny ``cls``: a text model, a tower, or (recursively) a composite."""
    subs = _sub_config_classes(cls)
    mt = cls.model_type
    if role == "text" and not {"text_config", "thinker_config"} & set(subs):
        kwargs = text_kwargs(mt)
    elif not subs:
        kwargs = _shrunk(cls, TOWER_COMMON, TOWER_OVERRIDES.get(mt, {}))
    else:
        kwargs = {}
        for name, sub_cls in subs.items():
            sub_role = "text" if name in ("text_config", "thinker_config") else "tower"
            sub = _tiny_kwargs(sub_cls, sub_role)
            sub["model_type"] = sub_cls.model_type  # type: ignore[attr-defined] # lets AutoConfig slots rebuild the right class
            kwargs[name] = sub
        kwargs.update(_shrunk(cls, TOP_COMMON, TOP_OVERRIDES.get(mt, {})))
    return kwargs


def tiny_config_for(model_type: str, **overrides):
    """A tiny config of the real class for ``model_type`` (text MoE LM or composite whose text model is MoE)."""
    cls = _config_class(model_type)
    kwargs = _tiny_kwargs(cls, "text")
    kwargs.update(overrides)
    return cls(**kwargs)


#: Routing buffers that random init leaves at zero (or constant); tests need random values to exercise them
#: (ZAYA's ``balancing_biases`` default of -1 on its skip class would never let a token skip).
BIAS_BUFFERS = ("e_score_correction_bias", "expert_bias", "balancing_biases")


#: Shifts added to the selection biases after spreading: AXK-2 masks experts outside its kept groups to 0.0,
#: which differs from -inf only when ``sigmoid + bias`` can be negative.
BIAS_SHIFTS = {"axk2": -0.75}
#: Spread of the random biases (ZAYA's tiny router gives nearly uniform probabilities: larger biases would
#: send every token to the same expert).
BIAS_SCALES = {"zaya": 1e-4}


def spread_routing_buffers(model, seed: int = 0, shift: float = 0.0, scale: float = 0.1) -> None:
    """Give selection biases, router biases and DeepSeek-V4 hash tables random values (init leaves them 0)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in list(model.named_buffers()) + list(model.named_parameters()):
            last = name.rsplit(".", 1)[-1]
            if last in BIAS_BUFFERS or (last == "bias" and ("router" in name or ".gate." in name)):
                if tensor.dtype.is_floating_point:
                    tensor.copy_((torch.rand(tensor.shape, generator=g) * scale + shift).to(tensor.dtype))
            elif last == "tid2eid":  # token id -> k distinct experts
                vocab, k = tensor.shape
                experts = int(tensor.max()) + 1 if tensor.max() > 0 else None
                experts = experts or _num_experts_of(model)
                rows = torch.stack([torch.randperm(experts, generator=g)[:k] for _ in range(vocab)])
                tensor.copy_(rows.to(tensor.dtype))


def _num_experts_of(model) -> int:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    for key in ("n_routed_experts", "num_local_experts", "num_experts"):
        value = getattr(config, key, None)
        if isinstance(value, int):
            return value
    raise ValueError("cannot tell the number of experts")
