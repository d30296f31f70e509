"""top-k on logits → softmax over the k: GPT-OSS (router bias), GraniteMoE."""

from __future__ import annotations

import torch

from moeguard.adapters.base import RoutingAdapter


class GptOssAdapter(RoutingAdapter):
    """Top-k of the (biased) logits, softmax over the k in the logits' dtype."""

    family = "topk-softmax (gpt-oss)"
    model_types = ("gpt_oss",)
    router_class_names = ("GptOssTopKRouter",)

    def route(self, router, logits, hidden):
        top_value, indices = torch.topk(logits, self.top_k(router), dim=-1)
        weights = torch.softmax(top_value, dim=1, dtype=top_value.dtype)
        return weights, indices


class GraniteMoeAdapter(RoutingAdapter):
    """Top-k of float32 logits, softmax over the k, cast to the hidden states' dtype."""

    family = "topk-softmax (granitemoe)"
    model_types = ("granitemoe", "granitemoeshared")
    router_class_names = ("GraniteMoeTopKRouter", "GraniteMoeSharedTopKRouter")

    def route(self, router, logits, hidden):
        top_logits, indices = logits.float().topk(self.top_k(router), dim=-1)
        weights = torch.softmax(top_logits, dim=-1).type_as(hidden)
        return weights, indices
