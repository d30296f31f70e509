"""softmax → top-k (→ renormalise): OLMoE, Qwen2-MoE, Qwen3-MoE, Mixtral."""

from __future__ import annotations

import torch
from torch import nn

from moeguard.adapters.base import RoutingAdapter


class SoftmaxTopKAdapter(RoutingAdapter):
    """Softmax over all experts, top-k, optional renormalisation of the k weights."""

    family = "softmax-topk"
    model_types: tuple[str, ...] = ("olmoe", "qwen2_moe", "qwen3_moe", "flex_olmo")
    router_class_names: tuple[str, ...] = (
        "OlmoeTopKRouter", "Qwen2MoeTopKRouter", "Qwen3MoeTopKRouter", "FlexOlmoTopKRouter"
    )
    #: Whether the router casts the k weights back to the logits' dtype (OLMoE/Qwen do, Mixtral not).
    cast_to_logits_dtype = True

    def renormalises(self, router: nn.Module) -> bool:
        return bool(getattr(router, "norm_topk_prob", True))

    def route(self, router, logits, hidden):
        probs = torch.softmax(logits, dtype=torch.float, dim=-1)
        top_value, indices = torch.topk(probs, self.top_k(router), dim=-1)
        if self.renormalises(router):
            top_value /= top_value.sum(dim=-1, keepdim=True)
        if self.cast_to_logits_dtype:
            top_value = top_value.to(logits.dtype)
        return top_value, indices


class MixtralAdapter(SoftmaxTopKAdapter):
    """Mixtral: always renormalises, keeps float32 weights."""

    family = "softmax-topk (mixtral)"
    model_types = ("mixtral", "minimax")
    router_class_names = ("MixtralTopKRouter", "MiniMaxTopKRouter")
    cast_to_logits_dtype = False

    def renormalises(self, router: nn.Module) -> bool:
        return True
