"""softmax → top-k (→ renormalise) → cast: OLMoE, Qwen-MoE (2, 3, 3-Next, 3.5, 3-VL, 3-Omni, 4), Mixtral, Jamba.

The rule, per token: ``p = softmax(z)`` in float32; the top-k of ``p``; the k weights divided by their sum
when the family renormalises; cast to the logits' dtype (Qwen), the hidden states' dtype (Jamba, Lara) or
kept in float32 (Mixtral). The variants differ only in those two choices.

SteerMoE semantics (softmax is invariant to a per-token shift, so edits act on ``log_softmax(z)``):

* **activate e**: ``r_e = max(r) + 0.01``, so e has the largest probability and is in every token's top-k.
* **deactivate e**: ``r_e = min(r) - 0.01``, so e has the smallest probability and is in no token's top-k;
  every other expert keeps its rank.
* the weights are the family's own on the edited scores (renormalised or not).
"""

from __future__ import annotations

import torch
from torch import nn

from moeguard.adapters.base import RoutingAdapter
from moeguard.adapters.registry import register_adapter


class SoftmaxTopKAdapter(RoutingAdapter):
    """Softmax over all experts, top-k, renormalisation as ``router.norm_topk_prob`` says (missing: always),
    weights cast to the logits' dtype."""

    family = "softmax-topk"
    model_types: tuple[str, ...] = (
        "olmoe",
        "qwen2_moe",
        "qwen3_moe",
        "flex_olmo",
        "mellum",
        "qwen3_next",
        "qwen3_5_moe",
        "qwen3_5_moe_text",
        "qwen3_vl_moe",
        "qwen3_omni_moe",
        "qwen3_omni_moe_thinker",
        "qwen4_exp",
        "qwen4_exp_text",
        "hunyuan_v1_moe",
    )
    router_class_names: tuple[str, ...] = (
        "OlmoeTopKRouter",
        "Qwen2MoeTopKRouter",
        "Qwen3MoeTopKRouter",
        "FlexOlmoTopKRouter",
        "MellumTopKRouter",
        "Qwen3NextTopKRouter",
        "Qwen3_5MoeTopKRouter",
        "Qwen3VLMoeTextTopKRouter",
        "Qwen3OmniMoeThinkerTextTopKRouter",
        "Qwen4ExpTextTopKRouter",
        "HunYuanMoEV1Gate",
    )
    #: Where the k weights end up: ``"logits"`` (their dtype), ``"hidden"`` (the router input's), None (float32).
    cast: str | None = "logits"

    def renormalises(self, router: nn.Module) -> bool:
        return bool(getattr(router, "norm_topk_prob", True))

    def route(self, router, logits, hidden, extra=()):
        probs = torch.softmax(logits, dtype=torch.float, dim=-1)
        top_value, indices = torch.topk(probs, self.top_k(router), dim=-1)
        if self.renormalises(router):
            top_value = top_value / top_value.sum(dim=-1, keepdim=True)
        if self.cast == "logits":
            top_value = top_value.to(logits.dtype)
        elif self.cast == "hidden":
            top_value = top_value.to(hidden.dtype)
        return top_value, indices


class MixtralAdapter(SoftmaxTopKAdapter):
    """Mixtral, MiniMax: always renormalises, keeps float32 weights."""

    family = "softmax-topk (mixtral)"
    model_types = ("mixtral", "minimax")
    router_class_names = ("MixtralTopKRouter", "MiniMaxTopKRouter")
    cast = None

    def renormalises(self, router: nn.Module) -> bool:
        return True


class JambaAdapter(SoftmaxTopKAdapter):
    """Jamba: never renormalises (its router has no flag), casts to the hidden states' dtype."""

    family = "softmax-topk (jamba)"
    model_types = ("jamba",)
    router_class_names = ("JambaTopKRouter",)
    cast = "hidden"

    def renormalises(self, router: nn.Module) -> bool:
        return False


class LaraMiniAdapter(SoftmaxTopKAdapter):
    """Lara-mini: float32 logits, ``norm_topk_prob`` flag, cast to the hidden states' dtype."""

    family = "softmax-topk (lara)"
    model_types = ("lara_mini",)
    router_class_names = ("LaraMiniTopKRouter",)
    cast = "hidden"

    def renormalises(self, router: nn.Module) -> bool:
        return bool(router.norm_topk_prob)


for _adapter in (SoftmaxTopKAdapter(), MixtralAdapter(), JambaAdapter(), LaraMiniAdapter()):
    register_adapter(_adapter)
