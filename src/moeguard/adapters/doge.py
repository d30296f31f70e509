"""Doge: product-key experts without a router module (capture only; steering refused).

``DogeCDMoE`` computes ``router_gate(h)`` (an ``nn.Linear`` with ``2·K`` outputs, ``K = sqrt(E)``), views it as
``(2, B·T, K)``, takes the top-K x-keys and y-keys, the top-k of their ``K²`` sums (expert ``x·K + y``), and a
softmax over the k (renormalised when ``norm_topk_prob``). moeguard hooks ``mlp.router_gate``; the
"logits" it records for Doge are that layer's outputs (``2·K`` per token), and ``route`` applies the block's
rule to them exactly.

The view does not split each token's vector in two: row ``n`` takes its x-keys from token ``n // 2`` and its
y-keys from token ``(B·T + n) // 2``, so a token's experts depend on other tokens of the batch (later ones
and padding included). A SteerMoE edit of one token's scores therefore moves other tokens' experts, and an
expert cannot be forced in or out of a token's top-k by editing key scores (each key is shared by K
experts). Steering Doge is **refused** with a one-line error; capture reads exactly what the model does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from moeguard.adapters.base import RouterOutput, RoutingAdapter
from moeguard.adapters.registry import register_adapter
from moeguard.errors import MoeguardError

REFUSAL = (
    "Doge routes with product keys mixed across tokens (its router_gate view), so no edit can force an expert "
    "in or out of one token's top-k; Doge supports capture and detection only"
)


class DogeAdapter(RoutingAdapter):
    """Doge: product-key top-k computed inline by ``DogeCDMoE`` from ``router_gate``."""

    family = "product-key (doge)"
    model_types = ("doge",)
    router_class_names = ("Linear",)
    steering = "refused (product keys mixed across tokens)"

    def is_router(self, name, module):
        return name.endswith("router_gate") and isinstance(module, torch.nn.Linear)

    def top_k(self, router) -> int:
        return int(self.parent(router).top_k)  # type: ignore[arg-type]

    def num_experts(self, router) -> int:
        return int(self.parent(router).num_experts)  # type: ignore[arg-type]

    def read_output(self, router, output):
        logits = output.reshape(-1, output.shape[-1])
        weights, indices = self.route(router, logits, None)
        return RouterOutput(logits, weights, indices)

    def write_output(self, output, weights, indices):
        raise MoeguardError(REFUSAL)

    def route(self, router, logits, hidden, extra=()):
        block = self.parent(router)
        n = logits.shape[0]
        keys = logits.reshape(-1).view(2, n, -1)
        (scores_x, scores_y), (indices_x, indices_y) = keys.topk(block.num_keys, dim=-1)
        all_scores = (scores_x.unsqueeze(-1) + scores_y.unsqueeze(-2)).view(n, -1)
        all_indices = (indices_x.unsqueeze(-1) * block.num_keys + indices_y.unsqueeze(-2)).view(n, -1)
        scores, position = all_scores.topk(block.top_k, dim=-1)
        weights = F.softmax(scores, dim=-1)
        if block.norm_topk_prob:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        return weights, all_indices.gather(-1, position)

    def edited_route(self, router, logits, hidden, edit, extra=()):
        raise MoeguardError(REFUSAL)

    def steer_output(self, router, output, hidden, edit, extra=()):
        raise MoeguardError(REFUSAL)

    def validate_steering(self, router, activate, deactivate):
        return REFUSAL

    def probabilities(self, router, logits):
        raise MoeguardError("Doge records router_gate outputs, not per-expert logits; it has no expert distribution")


register_adapter(DogeAdapter())
