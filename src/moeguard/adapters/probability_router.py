"""Routers that return probabilities, with a per-expert scale: Gemma-4 (+ text-only Gemma-4).

The router (a child of the decoder layer: Gemma-4's MoE runs in parallel with its dense MLP, there is no
MoE block module) returns ``(p, weights, indices)`` where ``p = softmax(proj(norm(h)))`` in float32 — the
"logits" moeguard records for this family are these probabilities. The rule: the top-k of ``p``
(``config.top_k_experts``; the router has no ``top_k`` attribute), divided by their sum, × the router's
``per_expert_scale`` at each selected expert.

SteerMoE semantics: the steering space is ``log(p)`` (the log-softmax of the router's hidden logits): an
activated expert gets ``max + 0.01`` and is in every top-k, a deactivated one ``min - 0.01`` and is in none;
the weights are the renormalised edited probabilities × ``per_expert_scale`` (an activated expert carries
its own scale). ``probabilities()`` returns ``p`` itself.
"""

from __future__ import annotations

import torch

from moeguard.adapters.base import RoutingAdapter
from moeguard.adapters.registry import register_adapter


class Gemma4Adapter(RoutingAdapter):
    """Gemma-4: probabilities in, top-k, renormalise, × per-expert scale."""

    family = "probability-router (gemma4)"
    model_types = ("gemma4", "gemma4_text")
    router_class_names = ("Gemma4TextRouter",)

    def top_k(self, router) -> int:
        return int(router.config.top_k_experts)

    def num_experts(self, router) -> int:
        return int(router.proj.out_features)

    def route(self, router, logits, hidden, extra=()):
        weights, indices = torch.topk(logits, k=self.top_k(router), dim=-1)
        weights = weights / weights.sum(dim=-1, keepdim=True)
        return weights * router.per_expert_scale[indices], indices

    def to_steering_space(self, logits):
        return torch.log(logits.float())

    def route_steering_scores(self, router, scores, hidden, logits, extra=()):
        return self.route(router, torch.softmax(scores, dim=-1), hidden, extra)

    def probabilities(self, router, logits):
        return logits.float()


register_adapter(Gemma4Adapter())
