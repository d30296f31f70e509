"""sparsemixer (PhiMoE): masked top-2 with a relative jitter threshold, evaluation-mode path.

The rule, per token (evaluation mode): the best expert, weighted by a softmax over the experts within a
relative jitter threshold of it; then the best of the rest, weighted the same way among the rest. Always two
experts, whatever ``num_experts_per_tok`` says. In training mode the router samples (not reproducible).

SteerMoE semantics: the threshold is relative to ``|score|``, so a shift changes routing: edits act on the raw
logits (activate: ``max + 0.01``, first choice; deactivate: ``min - 0.01``, never within the threshold of a
better expert, so never chosen while two others remain). Steering in training mode is refused.
"""

from __future__ import annotations

import torch

from moeguard.adapters.base import RoutingAdapter
from moeguard.adapters.registry import register_adapter


def _masked_choice(scores: torch.Tensor, candidates: torch.Tensor, jitter_eps: float):
    """Pick the best candidate and its softmax weight among experts within the jitter threshold."""
    threshold, best = candidates.max(dim=-1, keepdim=True)
    factor = scores.abs().clamp(min=threshold)
    outside = ((threshold - scores) / factor) > (2 * jitter_eps)
    gates = torch.softmax(candidates.masked_fill(outside, float("-inf")), dim=-1)
    return gates.gather(dim=-1, index=best), best


class PhimoeAdapter(RoutingAdapter):
    """Two experts per token: the best one, then the best of the rest, each weighted inside its mask."""

    family = "sparsemixer (phimoe)"
    model_types = ("phimoe",)
    router_class_names = ("PhimoeTopKRouter",)

    def top_k(self, router) -> int:
        return 2  # sparsemixer always selects two experts, whatever num_experts_per_tok says

    def route(self, router, logits, hidden, extra=()):
        eps = router.router_jitter_noise
        weight_1, first = _masked_choice(logits, logits, eps)
        rest = torch.scatter(logits, -1, first, float("-inf"))
        weight_2, second = _masked_choice(logits, rest, eps)
        return torch.cat((weight_1, weight_2), dim=-1), torch.cat((first, second), dim=-1)

    def to_steering_space(self, logits):
        # The jitter threshold is relative to |score|, so a shift changes routing: edit raw logits.
        return logits

    def validate_steering(self, router, activate, deactivate):
        if router.training:
            return "PhiMoE routing samples experts in training mode; call model.eval() before steering"
        return None


register_adapter(PhimoeAdapter())
