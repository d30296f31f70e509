"""sigmoid + correction bias + group-limited top-k (→ renormalise, × routed_scaling_factor): DeepSeek-V3.

The rule, per token: ``s = sigmoid(z)``; choice scores ``c = s + bias``; a group's score is the sum of its
two best ``c``; the ``topk_group`` best groups are kept; the top-k of ``c`` inside them are selected;
weights are ``s`` at those experts (renormalised if ``norm_topk_prob``) × ``routed_scaling_factor``.
Variants: AXK-2 masks experts outside the kept groups to ``0.0`` instead of ``-inf`` and may have no
groups at all (``n_group=None``); Beam sorts both top-k calls and leaves the scaling to its MoE block.

SteerMoE semantics here (sigmoid is not shift-invariant, so edits act on the raw logits ``z``):

* **activate e**: e's group is always kept and e always selected; its weight is ``sigmoid(max(z) + 0.01)``.
* **deactivate e**: only e is removed. Groups are still chosen by the model's own scores (with e in
  them), so every other expert the model would have selected stays selected; only when the kept groups
  hold fewer than k remaining experts are the next-best groups added until they do
  (:mod:`moeguard.adapters.groups`).
* AXK-2: out-of-group experts score ``0.0``, and with negative correction biases in-group experts can score
  below it, so the model's own rule picks among ties at ``0.0``; a deactivation keeps the model's other
  picks explicitly (:func:`moeguard.adapters.base.keep_own_picks`), and ``-inf`` puts e below the fill.
* Beam: the scaling lives in the MoE block (outside the weights), so steering leaves it alone.
* activated experts from more than ``topk_group`` groups are refused (one-line error): no token can route
  to them all.
* soft mode: ``z ± alpha``, then the model's own rule (group scores included).
"""

from __future__ import annotations

import torch

from moeguard.adapters.base import RoutingAdapter, force_choice, keep_own_picks
from moeguard.adapters.groups import groups_of, limit_to_groups
from moeguard.adapters.registry import register_adapter
from moeguard.routing.edits import ExpertEdit, edit_scores


class DeepseekV3Adapter(RoutingAdapter):
    """DeepSeek-V3 routing and the many models that copy it exactly (GLM-4.5 MoE, Kimi, Dots, ...)."""

    family = "sigmoid-group-topk (deepseek-v3)"
    model_types: tuple[str, ...] = (
        "deepseek_v3",
        "glm4_moe",
        "glm4_moe_lite",
        "glm_moe_dsa",
        "deepseek_v32",
        "dots1",
        "dots3_note",
        "dots3_note_text",
        "exaone_moe",
        "solar_open",
        "mimo_v2_flash",
        "axk1",
        "nemotron_h",
        "nemotron_h_omni",
        "nemo_speechlm",
        "glm4v_moe",
        "glm5_next",
        "hy_v4",
        "hy_v4_vl",
        "bailing_hybrid",
        "kimi_linear",
        "sarvam_mla",
        "sarvam_moe",
        "kimi_k25",
    )
    router_class_names: tuple[str, ...] = (
        "DeepseekV3TopkRouter",
        "Glm4MoeTopkRouter",
        "Glm4MoeLiteTopkRouter",
        "GlmMoeDsaTopkRouter",
        "DeepseekV32TopkRouter",
        "Dots1TopkRouter",
        "Dots3NoteTextTopkRouter",
        "ExaoneMoeTopkRouter",
        "SolarOpenTopkRouter",
        "MiMoV2FlashTopkRouter",
        "AXK1TopkRouter",
        "NemotronHTopkRouter",
        "Glm4vMoeTextTopkRouter",
        "Glm5NextTextTopkRouter",
        "HYV4TopkRouter",
        "HYV4VLTopkRouter",
        "BailingHybridTopkRouter",
        "KimiLinearTopkRouter",
    )
    #: Choice score of experts outside the kept groups.
    fill = float("-inf")
    #: Whether the group and expert top-k calls return sorted results (changes the order of the indices).
    sorted_topk = False
    #: Whether the router multiplies the weights by ``routed_scaling_factor`` (Beam's block does it instead).
    scaled = True

    def _has_groups(self, router) -> bool:
        return getattr(router, "num_group", None) is not None

    def _finish(self, router, sigmoid_scores: torch.Tensor, indices: torch.Tensor):
        weights = sigmoid_scores.gather(1, indices)
        if router.norm_topk_prob:
            weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
        if self.scaled:
            weights = weights * router.routed_scaling_factor
        return weights, indices

    def _choice(self, router, scores: torch.Tensor, edit: ExpertEdit | None) -> torch.Tensor:
        choice = scores + router.e_score_correction_bias
        if self._has_groups(router):
            choice, _ = limit_to_groups(
                choice,
                choice,
                router.num_group,
                router.topk_group,
                self.top_k(router),
                fill=self.fill,
                sorted_groups=self.sorted_topk,
                edit=edit,
            )
        elif edit is not None:
            choice = force_choice(choice, edit)
        return choice

    def _choose(self, router, scores: torch.Tensor, edit: ExpertEdit | None):
        return torch.topk(self._choice(router, scores, edit), k=self.top_k(router), dim=-1, sorted=self.sorted_topk)[1]

    def route(self, router, logits, hidden, extra=()):
        scores = logits.float().sigmoid()
        return self._finish(router, scores, self._choose(router, scores, None))

    def to_steering_space(self, logits):
        return logits.float()

    def edited_route(self, router, logits, hidden, edit: ExpertEdit, extra=()):
        z = logits.float()
        if edit.shift is not None:
            z = z + edit.shift.to(z.dtype)
        if not edit.is_hard:
            return self.route(router, z, hidden, extra)
        hard = ExpertEdit(edit.activate, edit.deactivate, drop_empty=False)
        indices = self._choose(router, z.sigmoid(), hard)  # groups on the model's own scores
        return self._finish(router, edit_scores(z, hard).sigmoid(), indices)

    def probabilities(self, router, logits):
        return logits.float().sigmoid()

    def validate_steering(self, router, activate, deactivate):
        if not self._has_groups(router):
            return None
        groups = groups_of(activate, self.num_experts(router), router.num_group)
        if len(groups) > router.topk_group:
            return (
                f"activated experts span {len(groups)} expert groups but only topk_group="
                f"{router.topk_group} groups are routed per token; activate experts from fewer groups"
            )
        return None


class Axk2Adapter(DeepseekV3Adapter):
    """AXK-2: experts outside the kept groups score ``0.0`` (not ``-inf``); groups are optional.

    With negative correction biases an in-group expert can score below ``0.0``, so the model's own rule then
    picks among experts tied at ``0.0``; a deactivation keeps the model's other picks explicitly (activated
    experts first, then the model's own selection without the deactivated ones, then the best of the rest).
    """

    family = "sigmoid-group-topk (axk2)"
    model_types = ("axk2",)
    router_class_names = ("AXK2TopkRouter",)
    fill = 0.0

    def _choose(self, router, scores, edit):
        if edit is None or edit.deactivate is None:
            return super()._choose(router, scores, edit)
        own = super()._choose(router, scores, None)
        return keep_own_picks(self._choice(router, scores, edit), own, edit, self.top_k(router))


class BeamAdapter(DeepseekV3Adapter):
    """Beam: sorted top-k calls; ``routed_scaling_factor`` is applied by the MoE block, not the router."""

    family = "sigmoid-group-topk (beam)"
    model_types = ("beam",)
    router_class_names = ("BeamTopKRouter",)
    sorted_topk = True
    scaled = False


for _adapter in (DeepseekV3Adapter(), Axk2Adapter(), BeamAdapter()):
    register_adapter(_adapter)
