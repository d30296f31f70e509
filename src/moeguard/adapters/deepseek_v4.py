"""DeepSeek-V4: learned sqrt-softplus routing on most layers, token-id hash routing on the first ones.

``mlp_layer_types`` says per layer: ``"moe"`` layers use ``DeepseekV4TopKRouter`` — scores
``s = score_fn(z)`` (sqrt(softplus) by default) in the logits' dtype, the top-k (unsorted) of
``s + e_score_correction_bias``, the un-biased ``s`` at the k divided by ``sum + 1e-20`` ×
``routed_scaling_factor`` (the rule of :mod:`moeguard.adapters.sigmoid_topk`, same SteerMoE semantics).
``"hash_moe"`` layers use ``DeepseekV4HashRouter``, called as ``gate(hidden, input_ids)``: the experts are a
fixed table lookup ``tid2eid[input_ids]`` and only the weights come from the scores.

Steering on hash layers is **refused** (one-line error): selection ignores the scores, so SteerMoE's edit
cannot activate or deactivate anything there, and any substitute (replacing a hashed expert) would be a
moeguard invention, not the model's rule. Capture and detection read hash layers like any other (their
"activation rates" are token frequencies through the table); steer the ``moe`` layers.
"""

from __future__ import annotations

from moeguard.adapters.base import RoutingAdapter
from moeguard.adapters.registry import register_adapter
from moeguard.adapters.sigmoid_topk import ScoreBiasTopKAdapter
from moeguard.errors import MoeguardError

HASH_ROUTER = "DeepseekV4HashRouter"


class _DeepseekV4Scores(ScoreBiasTopKAdapter):
    """The learned layers' rule (used by :class:`DeepseekV4Adapter`, not registered itself)."""

    family = "score-bias-topk (deepseek-v4)"
    eps = 1e-20
    scale = "routed_scaling_factor"

    def score(self, router, logits):
        return router.score_fn(logits)


class DeepseekV4Adapter(RoutingAdapter):
    """DeepSeek-V4: score-function + bias top-k layers, token-id hash layers (steering refused there)."""

    family = "score-bias-topk + hash (deepseek-v4)"
    model_types = ("deepseek_v4",)
    router_class_names = ("DeepseekV4TopKRouter", HASH_ROUTER)
    steering = "learned layers only (hash layers route by token id: refused)"

    def __init__(self):
        self.scores = _DeepseekV4Scores()

    @staticmethod
    def is_hash(router) -> bool:
        return type(router).__name__ == HASH_ROUTER

    def route(self, router, logits, hidden, extra=()):
        if not self.is_hash(router):
            return self.scores.route(router, logits, hidden, extra)
        indices = router.tid2eid[extra[0].reshape(-1)].long()
        weights = router.score_fn(logits).gather(1, indices)
        weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
        return weights * router.routed_scaling_factor, indices

    def to_steering_space(self, logits):
        return logits.float()

    def edited_route(self, router, logits, hidden, edit, extra=()):
        if self.is_hash(router):
            raise MoeguardError(self._refusal())
        return self.scores.edited_route(router, logits, hidden, edit, extra)

    def probabilities(self, router, logits):
        return self.scores.probabilities(router, logits)

    def validate_steering(self, router, activate, deactivate):
        return self._refusal() if self.is_hash(router) else None

    @staticmethod
    def _refusal() -> str:
        return (
            "this is a DeepSeek-V4 hash layer (experts chosen by token id, not by scores), which steering "
            "cannot change; steer its learned-routing ('moe') layers instead"
        )


register_adapter(DeepseekV4Adapter())
