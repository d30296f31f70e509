"""softmax, selection on bias-corrected probabilities: ERNIE-4.5-MoE (+ VL), LongCat-Flash (zero experts).

The rules, per token, on ``p = softmax(z)`` (float32):

* **ERNIE-4.5**: the top-k of ``p + bias`` (``gate.moe_statics.e_score_correction_bias``); weights ``p`` at the k
  divided by ``max(sum, moe_norm_min)``, cast to the hidden dtype. ERNIE-4.5-VL holds two expert sets per
  layer (``mlp.text_moe`` and ``mlp.vision_moe``); moeguard is text-only and reads the text set's router (the
  vision set only sees image tokens).
* **LongCat-Flash**: ``p`` over ``E`` routed experts plus ``Z`` *zero-computation* experts (identity experts
  with indices ``E .. E+Z-1``); the top-k of ``p + bias`` (unsorted); weights ``p`` at the k ×
  ``routed_scaling_factor``, not renormalised. moeguard counts and steers ``E + Z`` experts: the zero
  experts are experts like any other for capture, detection and steering (deactivating real experts can
  send tokens to zero experts: that is the model's rule).

SteerMoE semantics (softmax is shift-invariant: edits act on ``r = log_softmax(z)``, ``p' = softmax(r_edited)``):

* **activate e**: ``r_e = max(r) + 0.01`` for its weight, and its choice score is forced to ``+inf`` so
  that the bias cannot push it out: e is in every token's top-k.
* **deactivate e**: ``r_e = min(r) - 0.01`` and choice ``-inf``; the other slots follow the model's own
  bias-corrected choice.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from moeguard.adapters.base import RoutingAdapter, force_choice
from moeguard.adapters.registry import register_adapter
from moeguard.routing.edits import ExpertEdit, edit_scores


class _BiasedProbabilityAdapter(RoutingAdapter):
    """Shared steering for rules that select on probabilities + a bias and weight by the probabilities."""

    def probs(self, router, logits: torch.Tensor) -> torch.Tensor:
        return F.softmax(logits, dim=1, dtype=torch.float)

    def choice(self, router, probs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def select(self, router, choice: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def finish(self, router, probs, indices, logits, hidden):
        raise NotImplementedError

    def route(self, router, logits, hidden, extra=()):
        probs = self.probs(router, logits)
        return self.finish(router, probs, self.select(router, self.choice(router, probs)), logits, hidden)

    def edited_route(self, router, logits, hidden, edit: ExpertEdit, extra=()):
        r = self.to_steering_space(logits)
        if edit.shift is not None:
            r = r + edit.shift.to(r.dtype)
        if not edit.is_hard:
            return self.route(router, r, hidden, extra)
        hard = ExpertEdit(edit.activate, edit.deactivate, drop_empty=False)
        own = self.probs(router, logits if edit.shift is None else r)  # the model's own choice, exactly
        indices = self.select(router, force_choice(self.choice(router, own), hard))
        return self.finish(router, self.probs(router, edit_scores(r, hard)), indices, logits, hidden)


class ErnieAdapter(_BiasedProbabilityAdapter):
    """ERNIE-4.5-MoE / -VL (text experts): bias-corrected top-k, clamp-renormalised, cast to the hidden dtype."""

    family = "softmax-bias-topk (ernie4.5)"
    model_types = ("ernie4_5_moe", "ernie4_5_vl_moe")
    router_class_names = ("Ernie4_5_MoeTopKRouter", "Ernie4_5_VLMoeMoeTopKRouter")

    def is_router(self, name, module):
        return super().is_router(name, module) and "vision_moe" not in name

    def choice(self, router, probs):
        return probs + router.moe_statics.e_score_correction_bias.squeeze()

    def select(self, router, choice):
        return torch.topk(choice, self.top_k(router), dim=-1)[1]

    def finish(self, router, probs, indices, logits, hidden):
        weights = torch.gather(probs, dim=-1, index=indices)
        weights = weights / torch.clamp(weights.sum(dim=-1, keepdim=True), min=router.norm_min)
        return weights.to(hidden.dtype), indices


class LongcatFlashAdapter(_BiasedProbabilityAdapter):
    """LongCat-Flash: routed + zero experts, bias-corrected unsorted top-k, scaled, not renormalised."""

    family = "softmax-bias-topk (longcat, zero experts)"
    model_types = ("longcat_flash",)
    router_class_names = ("LongcatFlashTopkRouter",)

    def num_experts(self, router) -> int:
        return int(router.n_routed_experts)  # routed + zero-computation experts

    def probs(self, router, logits):
        return logits.softmax(dim=-1)

    def choice(self, router, probs):
        return probs.view(-1, router.n_routed_experts) + router.e_score_correction_bias.unsqueeze(0)

    def select(self, router, choice):
        return torch.topk(choice, k=self.top_k(router), dim=-1, sorted=False)[1]

    def finish(self, router, probs, indices, logits, hidden):
        weights = probs.gather(1, indices) * router.routed_scaling_factor
        return weights.to(logits.dtype), indices


for _adapter in (ErnieAdapter(), LongcatFlashAdapter()):
    register_adapter(_adapter)
