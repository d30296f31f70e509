"""Inkling: sigmoid selection among routed experts, softmax weights shared with router-weighted shared experts.

``InklingTopkRouter`` scores routed **and** shared experts (``weight`` is ``[E + S, H]``) in float32:
``full = h @ W.T``; the top-k (unsorted) of ``sigmoid(full[:, :E]) + bias`` are selected; the weights are a
softmax of ``logsigmoid`` over the k selected routed logits *and* the S shared logits, × ``route_scale`` ×
``global_scale``, cast to the hidden dtype; it returns ``(routed logits, k weights, indices, shared gammas)``
and the shared experts are scaled by the gammas. The shared logits are not returned: the adapter recomputes
them from the router's input (the same float32 product, so bit for bit).

SteerMoE semantics (sigmoid selection: edits act on the raw routed logits ``z``):

* **activate e**: its choice score is forced to ``+inf`` (in every token's top-k whatever the bias) and its
  logit set to ``max(z) + 0.01`` for the weights; **deactivate e**: choice ``-inf``, so it is in no top-k,
  the other slots follow the model's bias-corrected choice.
* the weights are recomputed with the shared experts (the softmax is over routed + shared), so steering
  also changes the shared experts' gammas — they are written back with the routed weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from moeguard.adapters.base import RoutingAdapter, force_choice
from moeguard.adapters.registry import register_adapter
from moeguard.routing.edits import ExpertEdit, edit_scores


class InklingAdapter(RoutingAdapter):
    """Inkling: sigmoid + bias selection; softmax(logsigmoid) weights over routed + shared experts."""

    family = "sigmoid-bias-topk (inkling, weighted shared experts)"
    model_types = ("inkling_text", "inkling_mm_model")
    router_class_names = ("InklingTopkRouter",)

    def _shared_logits(self, router, hidden):
        flat = hidden.reshape(-1, router.hidden_dim)
        return F.linear(flat.float(), router.weight.float())[..., -router.n_shared_experts :]

    def _select(self, router, routed, edit: ExpertEdit | None):
        choice = routed.sigmoid() + router.e_score_correction_bias.float()
        if edit is not None:
            choice = force_choice(choice, edit)
        return torch.topk(choice, self.top_k(router), dim=-1, sorted=False)[1]

    def _weights(self, router, routed, indices, hidden):
        picked = torch.cat([routed.gather(-1, indices), self._shared_logits(router, hidden)], dim=-1)
        log_probs = F.logsigmoid(picked)
        weights = torch.exp(log_probs - torch.logsumexp(log_probs, dim=-1, keepdim=True))
        weights = (weights * router.route_scale * router.global_scale.float()).to(hidden.dtype)
        return weights[..., : self.top_k(router)].contiguous(), weights[..., -router.n_shared_experts :].contiguous()

    def route(self, router, logits, hidden, extra=()):
        indices = self._select(router, logits, None)
        return self._weights(router, logits, indices, hidden)[0], indices

    def to_steering_space(self, logits):
        return logits.float()

    def _edited(self, router, logits, hidden, edit: ExpertEdit):
        z = logits.float() if edit.shift is None else logits.float() + edit.shift.to(torch.float32)
        hard = ExpertEdit(edit.activate, edit.deactivate, drop_empty=False) if edit.is_hard else None
        indices = self._select(router, z, hard)
        weights, gammas = self._weights(router, z if hard is None else edit_scores(z, hard), indices, hidden)
        return weights, indices, gammas

    def edited_route(self, router, logits, hidden, edit: ExpertEdit, extra=()):
        weights, indices, _ = self._edited(router, logits, hidden, edit)
        return weights, indices

    def steer_output(self, router, output, hidden, edit, extra=()):
        weights, indices, gammas = self._edited(router, output[0], hidden, edit)
        return output[0], weights.to(output[1].dtype), indices, gammas.to(output[3].dtype)

    def probabilities(self, router, logits):
        return logits.float().sigmoid()


register_adapter(InklingAdapter())
