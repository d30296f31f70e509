"""ZAYA: a top-1 MLP router over the experts plus a *skip* class.

``ZayaRouter`` scores ``E + 1`` classes (the last one, index ``E``, means "no expert": the token skips the
MoE), ``p = softmax(z)`` in the logits' dtype, chooses the top-1 of ``p`` (as float32) + ``balancing_biases``
and weights it by ``p``; a skip is handed to the experts as ``(index 0, weight 0)``. It returns
``(logits [N, E+1], weights [N, 1], indices [N, 1], router states for the next layer)``.

moeguard reports the skip class as **expert E** (weight 0): counts, traces and steering masks have ``E + 1``
columns, so a token that skips is never counted as expert 0. ``read_output`` maps the experts' ``(0, 0)``
back to ``E``; ``write_output`` maps ``E`` to ``(0, 0)``.

SteerMoE semantics (softmax is shift-invariant: edits act on ``r = log_softmax(z)``, ``p' = softmax(r_edited)``):

* **activate e**: its choice is forced to ``+inf`` so the balancing biases cannot override it: every token
  goes to e, weighted ``p'_e``. Activating ``E`` makes every token skip.
* **deactivate e**: choice ``-inf``: each token takes its next-best class by the model's own biased choice,
  which may be the skip class. Deactivating ``E`` means no token skips.
"""

from __future__ import annotations

import torch

from moeguard.adapters.base import RouterOutput, RoutingAdapter, force_choice
from moeguard.adapters.registry import register_adapter
from moeguard.routing.edits import ExpertEdit, edit_scores


class ZayaAdapter(RoutingAdapter):
    """ZAYA: top-1 over experts + skip, selection on ``p + balancing_biases``."""

    family = "skip-class-softmax (zaya)"
    model_types = ("zaya",)
    router_class_names = ("ZayaRouter",)

    def num_experts(self, router) -> int:
        return int(router.num_router_classes)  # the experts and the skip class (expert E)

    def read_output(self, router, output):
        logits, weights, indices = output[:3]
        skip = (indices == 0) & (weights == 0)
        return RouterOutput(logits, weights, indices.masked_fill(skip, logits.shape[-1] - 1))

    def write_output(self, output, weights, indices):
        logits, old_weights = output[0], output[1]
        skip = indices == logits.shape[-1] - 1
        weights = weights.to(old_weights.dtype).masked_fill(skip, 0)
        return (logits, weights, indices.masked_fill(skip, 0), *output[3:])

    def _route(self, router, probs: torch.Tensor, edit: ExpertEdit | None):
        choice = probs.detach().to(torch.float32) + router.balancing_biases
        if edit is not None:
            choice = force_choice(choice, edit)
        indices = torch.topk(choice, self.top_k(router), dim=-1)[1]
        weights = torch.gather(probs, dim=1, index=indices)
        return weights.masked_fill(indices == probs.shape[-1] - 1, 0), indices

    def route(self, router, logits, hidden, extra=()):
        return self._route(router, torch.softmax(logits, dim=-1), None)

    def edited_route(self, router, logits, hidden, edit: ExpertEdit, extra=()):
        r = self.to_steering_space(logits)
        if edit.shift is not None:
            r = r + edit.shift.to(r.dtype)
        if not edit.is_hard:
            return self._route(router, torch.softmax(r, dim=-1).to(logits.dtype), None)
        hard = ExpertEdit(edit.activate, edit.deactivate, drop_empty=False)
        own = torch.softmax(logits if edit.shift is None else r.to(logits.dtype), dim=-1)  # the model's own choice
        _, indices = self._route(router, own, hard)
        edited = torch.softmax(edit_scores(r, hard), dim=-1).to(logits.dtype)
        weights = edited.gather(1, indices).masked_fill(indices == logits.shape[-1] - 1, 0)
        return weights, indices


register_adapter(ZayaAdapter())
