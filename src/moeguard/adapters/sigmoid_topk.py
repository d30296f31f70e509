"""score (sigmoid, ...) + optional selection bias → top-k, no groups: AFMoE, HY-V3, MiniMax-M2/M3, Step-3.5/3.7,
Laguna, LFM2-MoE, Flint, Inkling-2 (+ loop), MuSE-Spark, Kolibri-1.

The rule, per token: scores ``s = f(z)`` (``f`` = sigmoid, or the router's own ``score_fn``); choice
``c = s + bias`` where the family has a selection bias (a router buffer, or a tensor the MoE block passes as
the router's second argument: AFMoE, HY-V3, MiniMax-M2, LFM2); the top-k of ``c``; the weights are the
un-biased ``s`` at the k, divided by their sum (always, or when ``norm_topk_prob``; some add an epsilon),
× a scale where the router applies one; then a cast where the router casts. Kolibri-1 selects on
``z + bias`` and weights ``sigmoid(z)`` at the k. Scaling that a block applies to the experts' *output*
(MiniMax-M3, Step, Laguna) is not part of the weights.

SteerMoE semantics (the scores are not shift-invariant, so edits act on the raw logits ``z``):

* **activate e**: ``z_e = max(z) + 0.01`` for its weight, and its choice score is forced to ``+inf`` so
  that no selection bias can push it out: e is in every token's top-k.
* **deactivate e**: ``z_e = min(z) - 0.01`` and its choice score ``-inf``: e is in no token's top-k; the
  other k slots follow the model's own choice scores (bias included).
* without renormalisation (Kolibri's default, Flint/LFM2 with the flag off) an activated expert's weight is
  the absolute ``f(max(z) + 0.01)``.
* soft mode: ``z ± alpha``, then the model's own rule (bias included).
"""

from __future__ import annotations

import torch

from moeguard.adapters.base import RoutingAdapter, force_choice
from moeguard.adapters.registry import register_adapter
from moeguard.routing.edits import ExpertEdit, edit_scores


class ScoreBiasTopKAdapter(RoutingAdapter):
    """A score function, an optional selection bias, top-k, the un-biased scores renormalised and scaled.

    Class attributes describe one router's rule (subclasses set them): ``bias`` (``"router"``: its
    ``e_score_correction_bias``; ``"argument"``: the router call's second argument; None), ``sorted_topk``,
    ``renorm`` (``"always"``, ``"flag"``: ``norm_topk_prob``, ``"never"``), ``eps`` (added to the sum),
    ``scale`` (router attribute multiplying the weights, or None) and ``cast`` (``"hidden"``, ``"logits"``
    or None: keep the scores' dtype).
    """

    family = "sigmoid-bias-topk"
    bias: str | None = "router"
    sorted_topk = False
    renorm = "always"
    eps: float | None = None
    scale: str | None = None
    cast: str | None = None

    def score(self, router, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits.float())

    def selection_bias(self, router, extra: tuple) -> torch.Tensor | None:
        if self.bias == "router":
            return router.e_score_correction_bias
        if self.bias == "argument":
            return extra[0] if extra else None
        return None

    def choice(self, router, logits: torch.Tensor, scores: torch.Tensor, extra: tuple) -> torch.Tensor:
        bias = self.selection_bias(router, extra)
        return scores if bias is None else scores + bias

    def renormalises(self, router) -> bool:
        return self.renorm == "always" or (self.renorm == "flag" and bool(router.norm_topk_prob))

    def finish(self, router, scores, indices, logits, hidden):
        weights = scores.gather(1, indices)
        if self.renormalises(router):
            total = weights.sum(dim=-1, keepdim=True)
            weights = weights / (total + self.eps if self.eps is not None else total)
        if self.scale is not None:
            weights = weights * getattr(router, self.scale)
        if self.cast == "hidden":
            weights = weights.to(hidden.dtype)
        elif self.cast == "logits":
            weights = weights.type_as(logits)
        return weights, indices

    def route(self, router, logits, hidden, extra=()):
        scores = self.score(router, logits)
        indices = torch.topk(
            self.choice(router, logits, scores, extra), self.top_k(router), dim=-1, sorted=self.sorted_topk
        )[1]
        return self.finish(router, scores, indices, logits, hidden)

    def to_steering_space(self, logits):
        return logits.float()

    def edited_route(self, router, logits, hidden, edit: ExpertEdit, extra=()):
        z = logits
        if edit.shift is not None:
            z = (z.float() + edit.shift.to(torch.float32)).to(logits.dtype)
        if not edit.is_hard:
            return self.route(router, z, hidden, extra)
        hard = ExpertEdit(edit.activate, edit.deactivate, drop_empty=False)
        choice = force_choice(self.choice(router, z, self.score(router, z), extra).float(), hard)
        indices = torch.topk(choice, self.top_k(router), dim=-1, sorted=self.sorted_topk)[1]
        edited = edit_scores(z.float(), hard).to(logits.dtype)
        return self.finish(router, self.score(router, edited), indices, logits, hidden)

    def probabilities(self, router, logits):
        if router is None:
            return torch.sigmoid(logits.float())
        return self.score(router, logits).float()


class AfmoeAdapter(ScoreBiasTopKAdapter):
    """AFMoE: the block's ``expert_bias`` is the router's second argument; ``route_scale``."""

    family = "sigmoid-bias-topk (afmoe)"
    model_types = ("afmoe",)
    router_class_names = ("AfmoeTokenChoiceRouter",)
    bias = "argument"
    sorted_topk = True
    eps = 1e-20
    scale = "route_scale"


class HyV3Adapter(ScoreBiasTopKAdapter):
    """HY-V3: the block's correction bias is the router's second argument; ``router_scaling_factor``."""

    family = "sigmoid-bias-topk (hy-v3)"
    model_types = ("hy_v3",)
    router_class_names = ("HYV3TopKRouter",)
    bias = "argument"
    eps = 1e-20
    scale = "router_scaling_factor"


class MiniMaxM2Adapter(ScoreBiasTopKAdapter):
    """MiniMax-M2: sigmoid of float32 logits, the block's bias as second argument, no scale."""

    family = "sigmoid-bias-topk (minimax-m2)"
    model_types = ("minimax_m2",)
    router_class_names = ("MiniMaxM2TopKRouter",)
    bias = "argument"


class MiniMaxM3Adapter(ScoreBiasTopKAdapter):
    """MiniMax-M3-VL, Step-3.5/3.7: the router's own bias; the block scales the experts' output."""

    family = "sigmoid-bias-topk (minimax-m3)"
    model_types = ("minimax_m3_vl", "minimax_m3_vl_text", "step3p7")
    router_class_names = ("MiniMaxM3VLTopKRouter", "Step3p7TopKRouter")


class LagunaAdapter(ScoreBiasTopKAdapter):
    """Laguna: float32 (optionally soft-capped) logits, sorted top-k, weights cast to the hidden dtype."""

    family = "sigmoid-bias-topk (laguna)"
    model_types = ("laguna",)
    router_class_names = ("LagunaTopKRouter",)
    sorted_topk = True
    cast = "hidden"

    def score(self, router, logits):
        return torch.sigmoid(logits)

    def choice(self, router, logits, scores, extra):
        return scores + router.e_score_correction_bias.to(scores.dtype)


class Lfm2MoeAdapter(ScoreBiasTopKAdapter):
    """LFM2-MoE: sigmoid in the logits' dtype; the block's ``expert_bias`` (second argument) when
    ``use_expert_bias``; ``norm_topk_prob`` with +1e-6; ``routed_scaling_factor``."""

    family = "sigmoid-bias-topk (lfm2)"
    model_types = ("lfm2_moe",)
    router_class_names = ("Lfm2MoeTopKRouter",)
    bias = "argument"
    sorted_topk = True
    renorm = "flag"
    eps = 1e-6
    scale = "routed_scaling_factor"
    cast = "logits"

    def score(self, router, logits):
        return logits.sigmoid()

    def selection_bias(self, router, extra):
        return super().selection_bias(router, extra) if router.use_expert_bias else None


class FlintAdapter(ScoreBiasTopKAdapter):
    """Flint: sigmoid of float32 logits, no bias, sorted top-k, ``norm_topk_prob``."""

    family = "sigmoid-topk (flint)"
    model_types = ("flint",)
    router_class_names = ("FlintTopKRouter",)
    bias = None
    sorted_topk = True
    renorm = "flag"


class ScoreFnAdapter(ScoreBiasTopKAdapter):
    """Inkling-2 (+ loop): the router's ``score_fn`` (sigmoid / sqrt-softplus), its bias, +1e-20,
    ``routed_scaling_factor``."""

    family = "score-bias-topk (inkling2)"
    model_types: tuple[str, ...] = ("inkling2", "inkling2_text", "inkling2_loop", "inkling2_loop_text")
    router_class_names: tuple[str, ...] = ("Inkling2TopKRouter", "Inkling2LoopTopKRouter")
    eps = 1e-20
    scale = "routed_scaling_factor"

    def score(self, router, logits):
        return router.score_fn(logits)


class MuseSparkAdapter(ScoreBiasTopKAdapter):
    """MuSE-Spark: logits already × ``output_multiplier``; its ``scoring_function``; ``norm_topk_prob_eps``."""

    family = "sigmoid-bias-topk (muse-spark)"
    model_types = ("muse_spark",)
    router_class_names = ("MuseSparkTopkRouter",)
    scale = "routed_scaling_factor"

    def score(self, router, logits):
        return router.scoring_function(logits)

    def finish(self, router, scores, indices, logits, hidden):
        weights = scores.gather(1, indices)
        weights = weights / (weights.sum(dim=-1, keepdim=True) + router.norm_topk_prob_eps)
        return weights * router.routed_scaling_factor, indices


class Kolibri1Adapter(ScoreBiasTopKAdapter):
    """Kolibri-1: selection on ``logits + bias``; weights ``sigmoid(logits)`` at the k; ``norm_topk_prob``."""

    family = "sigmoid-logit-bias-topk (kolibri1)"
    model_types = ("kolibri1",)
    router_class_names = ("Kolibri1TopKRouter",)
    sorted_topk = True
    renorm = "flag"

    def choice(self, router, logits, scores, extra):
        return logits + router.e_score_correction_bias

    def finish(self, router, scores, indices, logits, hidden):
        weights = logits.gather(1, indices).sigmoid()
        if router.norm_topk_prob:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        return weights, indices

    def edited_route(self, router, logits, hidden, edit: ExpertEdit, extra=()):
        z = logits if edit.shift is None else logits + edit.shift.to(logits.dtype)
        if not edit.is_hard:
            return self.route(router, z, hidden, extra)
        hard = ExpertEdit(edit.activate, edit.deactivate, drop_empty=False)
        choice = force_choice(self.choice(router, z, None, extra), hard)
        indices = torch.topk(choice, self.top_k(router), dim=-1, sorted=True)[1]
        return self.finish(router, None, indices, edit_scores(z, hard), hidden)


for _adapter in (
    AfmoeAdapter(),
    HyV3Adapter(),
    MiniMaxM2Adapter(),
    MiniMaxM3Adapter(),
    LagunaAdapter(),
    Lfm2MoeAdapter(),
    FlintAdapter(),
    ScoreFnAdapter(),
    MuseSparkAdapter(),
    Kolibri1Adapter(),
):
    register_adapter(_adapter)
