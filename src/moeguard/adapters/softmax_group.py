"""softmax + group-limited selection in probability space: DeepSeek-V2 (+ DeepSeek-OCR-2, Unlimited-OCR), Mistral-4.

The rules, per token, on ``p = softmax(z)``:

* **DeepSeek-V2**: ``topk_method="greedy"``: the top-k of ``p``; ``"group_limited_greedy"``: a group's score is
  its **best** ``p``, the ``topk_group`` best groups are kept, other experts set to ``0.0``, then the top-k.
  The weights are the selected (masked) ``p`` × ``routed_scaling_factor``, **never** renormalised
  (``config.norm_topk_prob`` is ignored by the model).
* **Mistral-4**: softmax in the logits' dtype, a group's score is the sum of its two best ``p``, other experts
  ``0.0``, the top-k; weights are the un-masked ``p`` at the k (renormalised when ``norm_topk_prob``, +1e-20)
  × ``routed_scaling_factor``. **Mistral-Large-4**: the same in float32, always renormalised.

SteerMoE semantics (softmax is shift-invariant: edits act on ``r = log_softmax(z)``, ``p' = softmax(r_edited)``):

* groups are chosen on the model's own ``p`` (:mod:`moeguard.adapters.groups`): an activated expert's group is
  always kept (with the top-2 sum it might otherwise lose), deactivation removes only that expert;
* inside the allowed groups activated experts are forced in and deactivated ones out; the weights are the
  family's own on ``p'`` (so for DeepSeek-V2, which does not renormalise, activation shrinks the other
  weights: that is SteerMoE's definition — edit the scores, then route normally);
* selection is always made on the model's own probabilities, bit for bit, so ties break as the model breaks
  them. Mistral-4 computes them in the model dtype: in bfloat16 a near-uniform router ties often, and a plain
  top-k after masking e may break a tie differently and swap a second expert; under a deactivation its
  other picks are therefore kept explicitly (:func:`moeguard.adapters.base.keep_own_picks`);
* DeepSeek-V2's masked experts are ``0.0`` and probabilities are positive, so masking never ties with a
  kept expert; activated experts from more than ``topk_group`` groups are refused (one-line error).
"""

from __future__ import annotations

import torch

from moeguard.adapters.base import RoutingAdapter, force_choice, keep_own_picks
from moeguard.adapters.groups import groups_of, limit_to_groups
from moeguard.adapters.registry import register_adapter
from moeguard.routing.edits import ExpertEdit, edit_scores


class DeepseekV2Adapter(RoutingAdapter):
    """DeepSeek-V2 greedy / group-limited greedy routing (group score = best probability)."""

    family = "softmax-group-topk (deepseek-v2)"
    model_types = ("deepseek_v2", "deepseek_ocr2", "unlimited_ocr")
    router_class_names = ("DeepseekV2TopkRouter", "DeepseekOcr2TextTopkRouter", "UnlimitedOcrTextTopkRouter")

    def _grouped(self, router) -> bool:
        return router.topk_method == "group_limited_greedy"

    def route(self, router, logits, hidden, extra=()):
        probs = logits.softmax(dim=-1, dtype=torch.float32)
        if self._grouped(router):
            probs, _ = limit_to_groups(
                probs, probs, router.num_group, router.topk_group, self.top_k(router), how="max", fill=0.0
            )
        weights, indices = torch.topk(probs, k=self.top_k(router), dim=-1, sorted=False)
        return weights * router.routed_scaling_factor, indices

    def edited_route(self, router, logits, hidden, edit: ExpertEdit, extra=()):
        if not edit.is_hard:  # soft steering: the model's rule on shifted scores
            return self.route(router, edit_scores(self.to_steering_space(logits), edit), hidden, extra)
        r = self.to_steering_space(logits)
        if edit.shift is not None:
            r = r + edit.shift.to(r.dtype)
        # selection on the model's own probabilities (bit for bit, so ties break as the model breaks them)
        own = logits.softmax(dim=-1, dtype=torch.float32) if edit.shift is None else r.softmax(dim=-1)
        hard = ExpertEdit(edit.activate, edit.deactivate, drop_empty=False)
        edited = edit_scores(r, hard).softmax(dim=-1)
        if self._grouped(router):
            _, mask = limit_to_groups(
                own, own, router.num_group, router.topk_group, self.top_k(router), how="max", fill=0.0, edit=hard
            )
            choice = force_choice(own.masked_fill(~mask, 0.0), hard)
            source = edited.masked_fill(~mask, 0.0)
        else:
            choice, source = force_choice(own, hard), edited
        indices = torch.topk(choice, k=self.top_k(router), dim=-1, sorted=False)[1]
        return source.gather(1, indices) * router.routed_scaling_factor, indices

    def validate_steering(self, router, activate, deactivate):
        if self._grouped(router):
            return _group_limit(activate, self.num_experts(router), router.num_group, router.topk_group)
        return None


class Mistral4Adapter(RoutingAdapter):
    """Mistral-4: softmax in the logits' dtype, top-2-sum groups, un-masked weights, ``norm_topk_prob``."""

    family = "softmax-group-topk (mistral4)"
    model_types: tuple[str, ...] = ("mistral4",)
    router_class_names: tuple[str, ...] = ("Mistral4TopkRouter",)
    #: Mistral-Large-4 computes the softmax in float32 and always renormalises.
    float32 = False

    def _renormalises(self, router) -> bool:
        return self.float32 or bool(router.norm_topk_prob)

    def _finish(self, router, probs, indices):
        weights = probs.gather(1, indices)
        if self._renormalises(router):
            weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
        return weights * router.routed_scaling_factor, indices

    def _probs(self, logits):
        return logits.float().softmax(-1) if self.float32 else logits.softmax(-1)

    def route(self, router, logits, hidden, extra=()):
        probs = self._probs(logits)
        choice, _ = limit_to_groups(probs, probs, router.num_group, router.topk_group, self.top_k(router), fill=0.0)
        return self._finish(router, probs, torch.topk(choice, k=self.top_k(router), dim=-1, sorted=False)[1])

    def edited_route(self, router, logits, hidden, edit: ExpertEdit, extra=()):
        r = self.to_steering_space(logits)
        if edit.shift is not None:
            r = r + edit.shift.to(r.dtype)
        dtype = torch.float32 if self.float32 else logits.dtype
        own = self._probs(logits) if edit.shift is None else r.softmax(-1).to(dtype)  # the model's own, exactly
        hard = ExpertEdit(edit.activate, edit.deactivate, drop_empty=False) if edit.is_hard else None
        edited = own if hard is None else edit_scores(r, hard).softmax(-1).to(dtype)
        k = self.top_k(router)
        choice, _ = limit_to_groups(own, own, router.num_group, router.topk_group, k, fill=0.0, edit=hard)
        if hard is None or hard.deactivate is None:
            return self._finish(router, edited, torch.topk(choice, k=k, dim=-1, sorted=False)[1])
        # probabilities in bfloat16 tie often: keep the model's own other picks explicitly
        plain, _ = limit_to_groups(own, own, router.num_group, router.topk_group, k, fill=0.0)
        picks = torch.topk(plain, k=k, dim=-1, sorted=False)[1]
        return self._finish(router, edited, keep_own_picks(choice, picks, hard, k))

    def validate_steering(self, router, activate, deactivate):
        return _group_limit(activate, self.num_experts(router), router.num_group, router.topk_group)


class MistralLarge4Adapter(Mistral4Adapter):
    """Mistral-Large-4: as Mistral-4 in float32, always renormalised."""

    family = "softmax-group-topk (mistral-large4)"
    model_types = ("mistral_large4",)
    router_class_names = ("MistralLarge4TextTopkRouter",)
    float32 = True


def _group_limit(activate: list[int], num_experts: int, n_group: int, topk_group: int) -> str | None:
    groups = groups_of(activate, num_experts, n_group)
    if len(groups) > topk_group:
        return (
            f"activated experts span {len(groups)} expert groups but only topk_group={topk_group} groups are "
            "routed per token; activate experts from fewer groups"
        )
    return None


for _adapter in (DeepseekV2Adapter(), Mistral4Adapter(), MistralLarge4Adapter()):
    register_adapter(_adapter)
