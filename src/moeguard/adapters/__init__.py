"""Routing adapters and the MoE view of a loaded model.

``inspect_moe(model)`` finds the adapter for the model's family and every decoder layer's router; wrapped
models (PEFT, DDP, ``torch.compile``) are seen through (:func:`moeguard.routing.unwrap`).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from moeguard.adapters.base import RoutingAdapter
from moeguard.adapters.registry import adapter_for_model_type, register_adapter, supported_model_types
from moeguard.errors import MoeguardError
from moeguard.routing.shape import MoEShape
from moeguard.routing.unwrap import unwrap

__all__ = [
    "MoEModel",
    "MoEShape",
    "RoutingAdapter",
    "decoder_layers",
    "inspect_moe",
    "register_adapter",
    "supported_model_types",
]


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder layer list (``model.model.layers`` for causal LMs, ``model.layers`` for base models)."""
    for candidate in (getattr(model, "model", None), model):
        layers = getattr(candidate, "layers", None)
        if isinstance(layers, nn.ModuleList):
            return layers
    raise MoeguardError(
        f"{type(model).__name__} has no decoder layer list (model.model.layers); "
        "load a causal LM with AutoModelForCausalLM"
    )


@dataclass(kw_only=True)
class MoEModel(MoEShape):
    """A loaded transformers MoE model seen through its routing adapter (its :class:`MoEShape` plus the model).

    ``layers`` are decoder-layer indices that have a router (dense layers are skipped but keep their
    index); ``routers[i]`` is the router module of decoder layer ``i``. ``model`` is the unwrapped
    transformers model (forward calls through it run the wrapper's injected layers, e.g. LoRA).
    """

    model: nn.Module
    #: Whether the model was given as a ``torch.compile`` wrapper (hooks then need dynamo's hook guards).
    compiled: bool = False

    def summary(self) -> dict:
        """Plain-data description for ``moeguard inspect`` and metadata files."""
        return {"model_class": type(self.model).__name__, **super().summary()}


def _shared_experts(config) -> int:
    """Shared (always-on) experts per MoE layer, from the config keys families use for them."""
    for name in ("n_shared_experts", "num_shared_experts"):
        value = getattr(config, name, None)
        if value:
            return int(value)
    for name in ("shared_expert_intermediate_size", "shared_intermediate_size"):
        if getattr(config, name, 0):
            return 1
    return 0


def inspect_moe(model: nn.Module) -> MoEModel:
    """Find the routing adapter and the router of every decoder layer of ``model``.

    Raises MoeguardError (one line) for an unsupported family or a model without routers.
    """
    compiled = isinstance(getattr(model, "_orig_mod", None), nn.Module)
    model = unwrap(model)
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    adapter = adapter_for_model_type(model_type) if model_type else None
    if adapter is None:
        raise MoeguardError(
            f"{type(model).__name__} (model_type={model_type!r}) is not a supported MoE family; "
            f"supported model types: {', '.join(supported_model_types())}"
        )
    routers: dict[int, nn.Module] = {}
    for index, layer in enumerate(decoder_layers(model)):
        found = [m for m in layer.modules() if type(m).__name__ in adapter.router_class_names]
        if len(found) > 1:
            raise MoeguardError(f"decoder layer {index} has {len(found)} routers; moeguard expects one per layer")
        if found:
            routers[index] = found[0]
    if not routers:
        raise MoeguardError(
            f"{type(model).__name__} has no {'/'.join(adapter.router_class_names)} router in any decoder "
            "layer; is this a dense checkpoint?"
        )
    sizes = {(adapter.num_experts(r), adapter.top_k(r)) for r in routers.values()}
    if len(sizes) != 1:
        raise MoeguardError(f"routers disagree on (experts, top_k): {sorted(sizes)}; not supported")
    ((num_experts, top_k),) = sizes
    return MoEModel(
        model=model,
        adapter=adapter,
        routers=routers,
        num_experts=num_experts,
        top_k=top_k,
        num_decoder_layers=len(decoder_layers(model)),
        shared_experts=_shared_experts(config),
        model_type=model_type,
        compiled=compiled,
    )
