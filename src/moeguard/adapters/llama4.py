"""Llama-4: top-k of the raw logits, sigmoid after, returned as dense per-expert scores.

``Llama4Router`` (an ``nn.Linear``) returns ``(scores [N, E], logits [N, E])``: the top-k logits (sorted),
scattered into ``-inf`` and passed through a float32 sigmoid, cast back — so ``scores`` is
``sigmoid(logit)`` at the k selected experts and exactly ``0`` elsewhere. Every expert then runs on every
token with its score folded into the input (``hidden × scores``); the shared expert is always on.
``read_output`` reads the selection from ``scores`` (its non-zero entries, in the order of the logits);
``write_output`` writes new weights back as dense scores.

SteerMoE semantics (sigmoid is not shift-invariant: edits act on the raw logits ``z``): an activated expert
gets ``max(z) + 0.01`` (in every top-k, weight ``sigmoid(max(z) + 0.01)``), a deactivated one ``min(z) - 0.01``
(in no top-k, score 0); the other experts keep their logits and their rank. Weights are not renormalised.
"""

from __future__ import annotations

import torch

from moeguard.adapters.base import RouterOutput, RoutingAdapter
from moeguard.adapters.registry import register_adapter


class Llama4Adapter(RoutingAdapter):
    """Llama-4: dense sigmoid scores of the top-k logits."""

    family = "topk-sigmoid (llama4, dense scores)"
    model_types = ("llama4", "llama4_text")
    router_class_names = ("Llama4Router",)

    def shared_experts(self, config) -> int:
        return 1

    def read_output(self, router, output):
        scores, logits = output
        selected = logits.masked_fill(scores == 0, float("-inf"))
        indices = torch.topk(selected, self.top_k(router), dim=1)[1]
        return RouterOutput(logits, scores.gather(1, indices), indices)

    def write_output(self, output, weights, indices):
        scores, logits = output
        return torch.zeros_like(scores).scatter_(1, indices, weights.to(scores.dtype)), logits

    def route(self, router, logits, hidden, extra=()):
        top_value, indices = torch.topk(logits, self.top_k(router), dim=1)
        return torch.sigmoid(top_value.float()).to(logits.dtype), indices

    def to_steering_space(self, logits):
        return logits.float()

    def route_steering_scores(self, router, scores, hidden, logits, extra=()):
        top_value, indices = torch.topk(scores, self.top_k(router), dim=1)  # float32: the margin survives
        return torch.sigmoid(top_value).to(logits.dtype), indices

    def probabilities(self, router, logits):
        return logits.float().sigmoid()


register_adapter(Llama4Adapter())
