"""DBRX: a router that returns logits only; the routing rule runs in the MoE block.

``DbrxRouter`` returns ``logits [N, E]``; ``DbrxFFN.route_tokens_to_experts`` then applies the rule: softmax in
the **logits' dtype**, the top-k (``block.top_k``), the k weights divided by their p-norm
(``ffn_config.moe_normalize_expert_weights``; None: not normalised). ``read_output`` applies that rule to the
logits (the experts receive exactly that), so readers see what the experts consume.

SteerMoE semantics (softmax and the p-norm are shift- and scale-safe: edits act on ``r = log_softmax(z)``):
under an edit the router's return value is replaced by the edited ``r`` (cast to the logits' dtype), so the
block's own rule routes the edited scores — an activated expert (``max + 0.01``) is in every top-k, a
deactivated one (``min - 0.01``) in none (in bfloat16, where 0.01 can round away, the forced experts are
kept one representable step above the maximum / below the minimum). Readers still receive the router's
own logits.
"""

from __future__ import annotations

import torch

from moeguard.adapters.base import RouterOutput, RoutingAdapter
from moeguard.adapters.registry import register_adapter
from moeguard.routing.edits import ExpertEdit, edit_scores


class DbrxAdapter(RoutingAdapter):
    """DBRX: logits-only router; softmax (logits dtype) → top-k → p-norm, in the block."""

    family = "softmax-topk (dbrx, rule in the block)"
    model_types = ("dbrx",)
    router_class_names = ("DbrxRouter",)

    def top_k(self, router) -> int:
        return int(self.parent(router).top_k)  # type: ignore[arg-type]

    def num_experts(self, router) -> int:
        return int(router.layer.out_features)

    def read_output(self, router, output):
        weights, indices = self.route(router, output, None)
        return RouterOutput(output, weights, indices)

    def write_output(self, output, weights, indices):
        raise NotImplementedError("DBRX routers return logits only; steer through steer_output")

    def steer_output(self, router, output, hidden, edit, extra=()):
        scores = self.to_steering_space(output)
        if edit.shift is not None:
            scores = scores + edit.shift.to(scores.dtype)
        edited = edit_scores(scores, ExpertEdit(edit.activate, edit.deactivate, drop_empty=False)).to(output.dtype)
        # In bfloat16 the 0.01 margin can round away; keep the forced experts strictly above / below the rest
        if edit.activate is not None:
            top = scores.amax(dim=-1, keepdim=True).to(output.dtype)
            above = torch.nextafter(top, torch.full_like(top, float("inf")))
            edited = torch.where(edit.activate, torch.maximum(edited, above), edited)
        if edit.deactivate is not None:
            bottom = scores.amin(dim=-1, keepdim=True).to(output.dtype)
            below = torch.nextafter(bottom, torch.full_like(bottom, float("-inf")))
            edited = torch.where(edit.deactivate, torch.minimum(edited, below), edited)
        return edited

    def route(self, router, logits, hidden, extra=()):
        probs = torch.nn.functional.softmax(logits, dim=1, dtype=logits.dtype)
        weights, indices = torch.topk(probs, self.top_k(router), dim=-1)
        p = self.parent(router).moe_normalize_expert_weights
        if p is not None:
            weights = weights / torch.norm(weights, p=p, dim=-1, keepdim=True)
        return weights, indices


register_adapter(DbrxAdapter())
