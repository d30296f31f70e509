"""Wrap one vLLM fused-MoE router: the routing core's steering before vLLM's own selection, and capture.

vLLM 0.32 routes every modular MoE kernel through ``BaseRouter._select_experts`` →
``self._compute_routing(hidden_states, router_logits, indices_type, input_ids=...)`` (then its own
``capture_fn``, EPLB mapping and index dtype). :class:`RouterHook` replaces ``_compute_routing`` on the router
*instance*. It is a second client of the routing core, not another steering mechanism:

1. vLLM's own routing runs on the unedited logits (unsteered tokens keep its result bit for bit);
2. the per-token :class:`~moeguard.routing.ExpertEdit` ``[N, E]`` of the step is gathered from the persistent
   slot tensors (filled from ``SteeringSpec.edits``), and the family's adapter — the same object the HF hook
   calls — routes the tokens with it: ``adapter.edited_route(view, logits, hidden, edit)``, on a
   :class:`RouterView` that shows vLLM's router under the attribute names of the transformers router;
3. rows whose request steers this layer take the edited routing (``torch.where``, no Python branch).

At install, :func:`check_routing` proves on random logits that vLLM's routing of the layer selects the
same experts (and weights) as the adapter's rule on the view, so the edited rows follow the same rule as
the unedited ones (a checkpoint that vLLM routes differently from transformers is refused).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from moeguard.adapters.base import RoutingAdapter
from moeguard.errors import MoeguardError
from moeguard.routing.edits import ExpertEdit


class RouterView:
    """A vLLM router under the attribute names moeguard's adapters read from transformers routers.

    Values are read live from the vLLM router (what vLLM routes with), so the adapter's rule on the view
    is vLLM's rule; :func:`check_routing` verifies it.
    """

    training = False

    def __init__(self, router, hf_config=None):
        self._router = router
        self.router_jitter_noise = float(getattr(hf_config, "router_jitter_noise", 0.0) or 0.0)

    @property
    def top_k(self) -> int:
        return int(self._router.top_k)

    @property
    def num_experts(self) -> int:
        return int(self._router.global_num_experts)

    @property
    def norm_topk_prob(self) -> bool:
        return bool(getattr(self._router, "renormalize", True))

    @property
    def num_group(self) -> int:
        return int(getattr(self._router, "num_expert_group", None) or 1)

    @property
    def topk_group(self) -> int:
        return int(getattr(self._router, "topk_group", None) or 1)

    @property
    def routed_scaling_factor(self) -> float:
        return float(getattr(self._router, "routed_scaling_factor", 1.0) or 1.0)

    @property
    def e_score_correction_bias(self) -> torch.Tensor:
        bias = getattr(self._router, "e_score_correction_bias", None)
        if bias is None:
            return torch.zeros(self.num_experts)
        return bias

    def params(self) -> dict:
        """Plain-data routing parameters (what a client needs to validate specs)."""
        return {
            "top_k": self.top_k,
            "num_experts": self.num_experts,
            "norm_topk_prob": self.norm_topk_prob,
            "num_group": self.num_group,
            "topk_group": self.topk_group,
            "routed_scaling_factor": self.routed_scaling_factor,
            "router_jitter_noise": self.router_jitter_noise,
            "training": False,
        }


class RouterParams:
    """Routing parameters of a served router on the client side (see :meth:`RouterView.params`)."""

    def __init__(self, **params):
        self.__dict__.update(params)

    def params(self) -> dict:
        return dict(self.__dict__)


def router_params(router) -> dict:
    """The plain-data routing parameters of a router: a :class:`RouterView` / :class:`RouterParams`, or a
    transformers router module (attribute names as the adapters read them)."""
    if hasattr(router, "params"):
        return router.params()
    return {
        "top_k": int(router.top_k),
        "num_experts": int(getattr(router, "num_experts", 0) or 0),
        "norm_topk_prob": bool(getattr(router, "norm_topk_prob", True)),
        "num_group": int(getattr(router, "num_group", 1) or 1),
        "topk_group": int(getattr(router, "topk_group", 1) or 1),
        "routed_scaling_factor": float(getattr(router, "routed_scaling_factor", 1.0) or 1.0),
        "router_jitter_noise": float(getattr(router, "router_jitter_noise", 0.0) or 0.0),
        "training": False,
    }


def shape_info(shape) -> dict:
    """A :class:`~moeguard.routing.MoEShape` as plain data (what crosses process boundaries; read back with
    :func:`moeguard.backends.vllm.engine.client_shape`)."""
    return {
        "model_type": shape.model_type,
        "num_decoder_layers": shape.num_decoder_layers,
        "num_experts": shape.num_experts,
        "top_k": shape.top_k,
        "shared_experts": shape.shared_experts,
        "routers": {str(layer): router_params(router) for layer, router in shape.routers.items()},
    }


def refuse_unsteerable(router) -> None:
    """One-line MoeguardError for routing schemes the wrapper cannot steer."""
    name = type(router).__name__
    if getattr(router, "_hash_indices_table", None) is not None or name == "ZeroExpertRouter":
        raise MoeguardError(f"{name}: hash-routed / zero-expert MoE layers cannot be steered")
    if getattr(router, "num_fused_shared_experts", 0):
        raise MoeguardError(f"{name} fuses shared experts into top-k; disable shared-expert fusion to steer")
    if not hasattr(router, "_compute_routing"):
        raise MoeguardError(f"{name} is not a vLLM BaseRouter; moeguard steers BaseRouter subclasses only")
    if getattr(router, "scoring_func", "softmax") not in ("softmax", "sigmoid"):
        raise MoeguardError(f"{name}: scoring_func={router.scoring_func!r} routing is not supported for steering")


def _sorted(weights: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    order = ids.long().argsort(dim=-1)
    return weights.float().gather(1, order), ids.long().gather(1, order)


def check_routing(
    original: Callable,
    adapter: RoutingAdapter,
    view: RouterView,
    hidden_size: int,
    dtype: torch.dtype,
    device: torch.device,
    layer: int,
    tokens: int = 64,
) -> None:
    """vLLM's routing of random logits must select the adapter's experts with its weights (rtol 1e-3)."""
    generator = torch.Generator().manual_seed(layer)
    logits = (torch.randn(tokens, view.num_experts, generator=generator) * 2).to(device)
    hidden = torch.zeros(tokens, hidden_size, dtype=dtype, device=device)
    got_w, got_i = _sorted(*original(hidden, logits, None, input_ids=None))
    want_w, want_i = _sorted(*adapter.route(view, logits, hidden))  # type: ignore[arg-type]  # a router view
    same = torch.equal(got_i.cpu(), want_i.cpu()) and torch.allclose(got_w.cpu(), want_w.cpu(), rtol=1e-3, atol=1e-5)
    if not same:
        raise MoeguardError(
            f"vLLM routes decoder layer {layer} differently from moeguard's {adapter.family} rule for this "
            "checkpoint (e.g. a routing option vLLM's model class ignores); its steering would not match the "
            "HF path, so moeguard refuses to serve it"
        )


class RouterHook:
    """The installed wrapper of one router; ``remove()`` restores vLLM's own ``_compute_routing``."""

    def __init__(
        self, router, layer: int, row: int, state, adapter: RoutingAdapter, view: RouterView, output_scale: float = 1.0
    ):
        refuse_unsteerable(router)
        #: ``routed_scaling_factor`` vLLM applies to the experts' output instead of the weights (DeepSeek-V3,
        #: GLM-4.5 MoE); captured weights include it, as on the HF path.
        self.output_scale = float(output_scale or 1.0)
        self.router = router
        self.layer = layer
        self.row = row
        self.state = state
        self.adapter = adapter
        self.view = view
        self.original: Callable = router._compute_routing
        router._compute_routing = self

    def remove(self) -> None:
        if self.router.__dict__.get("_compute_routing") is self:
            del self.router.__dict__["_compute_routing"]

    def __call__(self, hidden_states, router_logits, indices_type, *, input_ids=None):
        state = self.state
        weights, ids = self.original(hidden_states, router_logits, indices_type, input_ids=input_ids)
        if state.static_graph or state.active:
            weights, ids = self._steer(hidden_states, router_logits, weights, ids)
        if state.static_graph or state.capturing:
            n = ids.shape[0]
            state.ids[self.row, :n].copy_(ids)
            state.weights[self.row, :n].copy_(weights if self.output_scale == 1.0 else weights * self.output_scale)
            if state.logits is not None:
                state.logits[self.row, :n].copy_(router_logits.reshape(n, -1))
        return weights, ids

    def _steer(self, hidden_states, logits, weights, ids):
        state, row = self.state, self.row
        slots = state.token_slot[: logits.shape[0]]
        edit = ExpertEdit(
            state.activate[slots, row], state.deactivate[slots, row], state.shift[slots, row], drop_empty=False
        )
        new_weights, new_ids = self.adapter.edited_route(self.view, logits, hidden_states, edit)
        steered = state.steers[slots, row].unsqueeze(-1)
        weights = torch.where(steered, new_weights.to(weights.dtype), weights)
        ids = torch.where(steered, new_ids.to(ids.dtype), ids)
        return weights, ids
