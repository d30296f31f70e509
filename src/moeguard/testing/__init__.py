"""Tiny random MoE models built from the real transformers config classes (tests, benchmarks, examples).

``tiny_config(model_type)`` covers every model type with a registered routing adapter (``TINY_TYPES``):
hand-written configs for the first families (``TINY_FAMILIES``, which other tests rely on), the generic
shrinking of :mod:`moeguard.testing.configs` for the rest. ``save_tiny_model(model_type, folder)`` builds
one with the Auto class :func:`moeguard.models.load_model` uses, gives its selection biases and hash tables
random values, and writes it with a small trained tokenizer (chat template) via ``save_pretrained``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from moeguard.chat import build_tokenizer

#: The first families, with hand-written tiny configs that other tests rely on (recorder, steering, CLI).
TINY_FAMILIES = (
    "olmoe",
    "qwen2_moe",
    "qwen3_moe",
    "mixtral",
    "gpt_oss",
    "granitemoe",
    "phimoe",
    "deepseek_v3",
    "flex_olmo",
    "minimax",
    "granitemoeshared",
    "glm4_moe",
)

_COMMON: dict[str, Any] = dict(
    vocab_size=512,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=1,
    tie_word_embeddings=False,
)


def tiny_config(family: str, **overrides):
    """A tiny config of the real class for ``family`` (a ``model_type``), 8 experts, top-2 where it can."""
    import transformers

    if family not in TINY_FAMILIES:
        from moeguard.testing.configs import tiny_config_for

        try:
            return tiny_config_for(family, **overrides)
        except KeyError:
            raise ValueError(f"no tiny config for {family!r}") from None

    tf: Any = transformers  # config classes take model-specific keyword arguments

    common: dict[str, Any] = dict(_COMMON)
    cfg: Any
    if family == "olmoe":
        cfg = tf.OlmoeConfig(**common, num_experts=8, num_experts_per_tok=2, norm_topk_prob=False)
    elif family == "qwen2_moe":
        cfg = tf.Qwen2MoeConfig(
            **common,
            num_experts=8,
            num_experts_per_tok=2,
            moe_intermediate_size=32,
            shared_expert_intermediate_size=48,
            norm_topk_prob=False,
            mlp_only_layers=[1],
        )
    elif family == "qwen3_moe":
        cfg = tf.Qwen3MoeConfig(
            **common, num_experts=8, num_experts_per_tok=2, moe_intermediate_size=32, norm_topk_prob=True, head_dim=8
        )
    elif family == "mixtral":
        cfg = tf.MixtralConfig(**common, num_local_experts=8, num_experts_per_tok=2)
    elif family == "gpt_oss":
        common.update(num_key_value_heads=2, head_dim=8)
        cfg = tf.GptOssConfig(
            **common,
            num_local_experts=8,
            num_experts_per_tok=2,
            layer_types=["sliding_attention", "full_attention", "sliding_attention"],
            sliding_window=16,
        )
    elif family == "granitemoe":
        cfg = tf.GraniteMoeConfig(**common, num_local_experts=8, num_experts_per_tok=2)
    elif family == "phimoe":
        cfg = tf.PhimoeConfig(**common, num_local_experts=8, num_experts_per_tok=2)
    elif family == "deepseek_v3":
        common.update(num_key_value_heads=4)  # multi-head latent attention has no grouped KV heads
        cfg = tf.DeepseekV3Config(
            **common,
            n_routed_experts=8,
            num_experts_per_tok=2,
            n_group=4,
            topk_group=2,
            moe_intermediate_size=32,
            n_shared_experts=1,
            first_k_dense_replace=1,
            kv_lora_rank=16,
            q_lora_rank=16,
            qk_rope_head_dim=8,
            qk_nope_head_dim=8,
            v_head_dim=8,
            routed_scaling_factor=2.5,
            norm_topk_prob=True,
        )
    elif family == "flex_olmo":
        cfg = tf.FlexOlmoConfig(**common, num_experts=8, num_experts_per_tok=2)
    elif family == "minimax":
        cfg = tf.MiniMaxConfig(
            **common,
            num_local_experts=8,
            num_experts_per_tok=2,
            head_dim=8,
            layer_types=["linear_attention", "full_attention", "linear_attention"],
        )
    elif family == "granitemoeshared":
        cfg = tf.GraniteMoeSharedConfig(
            **common, num_local_experts=8, num_experts_per_tok=2, shared_intermediate_size=32
        )
    elif family == "glm4_moe":
        cfg = tf.Glm4MoeConfig(
            **common,
            n_routed_experts=8,
            num_experts_per_tok=2,
            n_group=4,
            topk_group=2,
            moe_intermediate_size=32,
            n_shared_experts=1,
            first_k_dense_replace=1,
            head_dim=8,
            routed_scaling_factor=2.5,
            norm_topk_prob=True,
        )
    else:
        raise ValueError(f"no tiny config for {family!r}")
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def train_test_tokenizer(texts: list[str] | None = None, vocab_size: int = 512):
    """A byte-level BPE tokenizer with the chat template, trained in milliseconds on ``texts``."""

    texts = (
        texts
        or [
            "Count to five. 1, 2, 3, 4, 5. one, two, three, four, five.",
            "How do I bake bread? Mix flour, water and yeast, then bake.",
            "I can't help with that request. Sure, here is how.",
        ]
        * 4
    )
    return build_tokenizer(texts, vocab_size)


def save_tiny_model(family: str, folder: str | Path, seed: int = 0, **overrides) -> Path:
    """Build a tiny random model of ``family`` (a model type), save it with a tokenizer, return the folder."""
    from moeguard.models import auto_class

    folder = Path(folder)
    torch.manual_seed(seed)
    config = tiny_config(family, **overrides)
    model = auto_class(config).from_config(config)
    if family in TINY_FAMILIES:
        _spread_router_bias(model)
    else:
        from moeguard.testing.configs import BIAS_SCALES, BIAS_SHIFTS, spread_routing_buffers

        spread_routing_buffers(model, seed=seed, shift=BIAS_SHIFTS.get(family, 0.0), scale=BIAS_SCALES.get(family, 0.1))
    model.save_pretrained(folder)
    vocab = getattr(config.get_text_config(), "vocab_size", None) or 512
    train_test_tokenizer(vocab_size=min(int(vocab), 512)).save_pretrained(folder)
    return folder


def _spread_router_bias(model) -> None:
    """Give biased routers (GPT-OSS) and correction biases (DeepSeek) non-zero random values so tests
    exercise them; random init leaves them at zero."""
    with torch.no_grad():
        for name, param in model.named_buffers():
            if name.endswith("e_score_correction_bias"):
                param.copy_(torch.rand_like(param) * 0.1)
        for name, param in model.named_parameters():
            if name.endswith("router.bias"):
                param.copy_(torch.randn_like(param) * 0.5)


def __getattr__(name: str):
    if name == "TINY_TYPES":  # every registered model type (loads the adapter registry on first use)
        from moeguard.adapters import supported_model_types

        return tuple(supported_model_types())
    raise AttributeError(name)
