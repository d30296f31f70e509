"""sigmoid + correction bias + group-limited top-k (→ renormalise, × routed_scaling_factor): DeepSeek-V3.

The rule, per token: ``s = sigmoid(z)``; choice scores ``c = s + bias``; a group's score is the sum of its
two best ``c``; the ``topk_group`` best groups are kept; the top-k of ``c`` inside them are selected;
weights are ``s`` at those experts (renormalised if ``norm_topk_prob``) × ``routed_scaling_factor``.

SteerMoE semantics here (sigmoid is not shift-invariant, so edits act on the raw logits ``z``):

* **activate e**: e's group is always kept and e always selected; its weight is ``sigmoid(max(z) + 0.01)``.
* **deactivate e**: only e is removed. Groups are still chosen by the model's own scores (with e in
  them), so every other expert the model would have selected stays selected; only when the kept groups
  hold fewer than k remaining experts are the next-best groups added until they do.
* soft mode: ``z ± alpha``, then the model's own rule (group scores included).
"""

from __future__ import annotations

import torch

from moeguard.adapters.base import RoutingAdapter
from moeguard.routing.edits import ExpertEdit, edit_scores


class DeepseekV3Adapter(RoutingAdapter):
    """DeepSeek-V3 routing (also GLM-4.5 MoE)."""

    family = "sigmoid-group-topk (deepseek-v3)"
    model_types = ("deepseek_v3", "glm4_moe")
    router_class_names = ("DeepseekV3TopkRouter", "Glm4MoeTopkRouter")

    def _groups(self, router) -> tuple[int, int]:
        n_group = router.num_group
        return n_group, self.num_experts(router) // n_group

    def _finish(self, router, sigmoid_scores: torch.Tensor, indices: torch.Tensor):
        weights = sigmoid_scores.gather(1, indices)
        if router.norm_topk_prob:
            weights /= weights.sum(dim=-1, keepdim=True) + 1e-20
        return weights * router.routed_scaling_factor, indices

    def _group_mask(self, router, choice: torch.Tensor, forced_groups=None, available=None) -> torch.Tensor:
        """``[N, E]`` experts inside the kept groups."""
        n_group, per_group = self._groups(router)
        group_scores = choice.view(-1, n_group, per_group).topk(2, dim=-1)[0].sum(dim=-1)
        if forced_groups is not None:
            group_scores = group_scores.masked_fill(forced_groups, float("inf"))
        group_idx = torch.topk(group_scores, k=router.topk_group, dim=-1, sorted=False)[1]
        group_mask = torch.zeros_like(group_scores).scatter_(1, group_idx, 1).bool()
        if available is not None:  # deactivation may leave the kept groups with fewer than k experts
            # No host synchronisation (no branch on tensor values): the same code runs inside compiled
            # graphs, e.g. vLLM's router wrapper (moeguard.backends.vllm).
            enough = (available * group_mask).sum(dim=-1, keepdim=True) >= self.top_k(router)
            order = torch.sort(group_scores, dim=-1, descending=True, stable=True).indices
            sorted_available = available.expand_as(group_scores).gather(1, order)
            before = sorted_available.cumsum(dim=-1) - sorted_available
            rank = torch.arange(n_group, device=choice.device).expand_as(order)
            take = (rank < router.topk_group) | (before < self.top_k(router))
            extended = torch.zeros_like(group_mask).scatter_(1, order, take)
            group_mask = torch.where(enough, group_mask, extended)
        return group_mask.unsqueeze(-1).expand(-1, n_group, per_group).reshape(-1, n_group * per_group)

    def _select(self, router, z: torch.Tensor):
        scores = z.sigmoid()
        choice = scores + router.e_score_correction_bias
        choice = choice.masked_fill(~self._group_mask(router, choice), float("-inf"))
        indices = torch.topk(choice, k=self.top_k(router), dim=-1, sorted=False)[1]
        return self._finish(router, scores, indices)

    def route(self, router, logits, hidden):
        return self._select(router, logits.float())

    def to_steering_space(self, logits):
        return logits.float()

    def edited_route(self, router, logits, hidden, edit: ExpertEdit):
        z = logits.float()
        if edit.shift is not None:
            z = z + edit.shift.to(z.dtype)
        if not edit.is_hard:
            return self._select(router, z)
        n_group, per_group = self._groups(router)
        choice = z.sigmoid() + router.e_score_correction_bias  # the model's own group scores
        edited = edit_scores(z, ExpertEdit(edit.activate, edit.deactivate, drop_empty=False))
        scores = edited.sigmoid()
        forced_groups = available = None
        if edit.activate is not None:
            forced_groups = edit.activate.reshape(-1, n_group, per_group).any(dim=-1)
        if edit.deactivate is not None:
            available = per_group - edit.deactivate.reshape(-1, n_group, per_group).sum(dim=-1)
        allowed = self._group_mask(router, choice, forced_groups, available)
        if edit.deactivate is not None:
            allowed = allowed & ~edit.deactivate
        choice = choice.masked_fill(~allowed, float("-inf"))
        if edit.activate is not None:
            choice = choice.masked_fill(edit.activate, float("inf"))
        indices = torch.topk(choice, k=self.top_k(router), dim=-1, sorted=False)[1]
        return self._finish(router, scores, indices)

    def probabilities(self, router, logits):
        return logits.float().sigmoid()

    def validate_steering(self, router, activate, deactivate):
        n_group, per_group = self._groups(router)
        groups = {e // per_group for e in activate}
        if len(groups) > router.topk_group:
            return (
                f"activated experts span {len(groups)} expert groups but only topk_group="
                f"{router.topk_group} groups are routed per token; activate experts from fewer groups"
            )
        return None
