"""sigmoid + correction bias + group-limited top-k (→ renormalise, × routed_scaling_factor): DeepSeek-V3."""

from __future__ import annotations

import torch

from moeguard.adapters.base import STEER_MARGIN, RoutingAdapter, soft_shift

#: Added to / subtracted from an expert's selection score to force it in or out of the top-k.
_FORCE = 1e4


class DeepseekV3Adapter(RoutingAdapter):
    """DeepSeek-V3 routing. Steering edits the logits (sigmoid is not shift-invariant) and forces the
    selection score of activated (deactivated) experts far above (below) every other expert."""

    family = "sigmoid-group-topk (deepseek-v3)"
    model_types = ("deepseek_v3", "glm4_moe")
    router_class_names = ("DeepseekV3TopkRouter", "Glm4MoeTopkRouter")

    def _select(self, router, logits, choice_shift=None):
        scores = logits.sigmoid()
        choice = scores + router.e_score_correction_bias
        if choice_shift is not None:
            choice = choice + choice_shift
        n_group, per_group = router.num_group, self.num_experts(router) // router.num_group
        group_scores = choice.view(-1, n_group, per_group).topk(2, dim=-1)[0].sum(dim=-1)
        group_idx = torch.topk(group_scores, k=router.topk_group, dim=-1, sorted=False)[1]
        group_mask = torch.zeros_like(group_scores).scatter_(1, group_idx, 1)
        score_mask = group_mask.unsqueeze(-1).expand(-1, n_group, per_group).reshape(-1, n_group * per_group)
        choice = choice.masked_fill(~score_mask.bool(), float("-inf"))
        indices = torch.topk(choice, k=self.top_k(router), dim=-1, sorted=False)[1]
        weights = scores.gather(1, indices)
        if router.norm_topk_prob:
            weights /= weights.sum(dim=-1, keepdim=True) + 1e-20
        return weights * router.routed_scaling_factor, indices

    def route(self, router, logits, hidden):
        return self._select(router, logits.float())

    def to_steering_space(self, logits):
        return logits.float()

    def steered_route(self, router, logits, hidden, activate, deactivate, soft_alpha=None):
        z = logits.float()
        if soft_alpha is not None:
            return self._select(router, z + soft_shift(activate, deactivate, soft_alpha, z.dtype))
        original = z  # both bounds come from the unedited scores
        if activate is not None:
            z = torch.where(activate, original.amax(dim=-1, keepdim=True) + STEER_MARGIN, z)
        if deactivate is not None:
            z = torch.where(deactivate, original.amin(dim=-1, keepdim=True) - STEER_MARGIN, z)
        return self._select(router, z, choice_shift=soft_shift(activate, deactivate, _FORCE, z.dtype))

    def probabilities(self, router, logits):
        return logits.float().sigmoid()

    def validate_steering(self, router, activate, deactivate):
        per_group = self.num_experts(router) // router.num_group
        groups = {e // per_group for e in activate}
        if len(groups) > router.topk_group:
            return (
                f"activated experts span {len(groups)} expert groups but only topk_group="
                f"{router.topk_group} groups are routed per token; activate experts from fewer groups"
            )
        return None
