"""Routing adapters and the MoE view of a loaded model.

``inspect_moe(model)`` finds the adapter for the model's family (by ``config.model_type``), the decoder
layers (wherever the architecture keeps them: ``model.layers``, ``model.language_model.layers`` of
vision-language models, ``thinker...`` of omni models, ``transformer.blocks``, ...) and every layer's
MLP-experts router; wrapped models (PEFT, DDP, ``torch.compile``) are seen through
(:func:`moeguard.routing.unwrap`). The first time a model is inspected, the adapter's rule is checked
against the router's own output on a small probe (:mod:`moeguard.adapters.probe`): a mismatch is an
error, never silently wrong routing. Routers other than the MLP experts' (JetMoE's attention experts,
ERNIE-VL's vision experts, vision towers' MoE) are out of scope.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from moeguard.adapters.base import RoutingAdapter
from moeguard.adapters.registry import (
    adapter_for_model_type,
    register_adapter,
    registered_adapters,
    supported_model_types,
)
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
    "registered_adapters",
    "supported_model_types",
]

#: Where architectures keep their decoder layers, relative to the loaded model, in the order tried.
LAYER_PATHS = (
    "model.layers",
    "layers",
    "model.language_model.layers",
    "language_model.layers",
    "language_model.model.layers",
    "model.language_model.model.layers",
    "thinker.model.language_model.layers",
    "model.thinker.model.language_model.layers",
    "transformer.blocks",
    "blocks",
    "model.decoder.layers",
)


def _at(model: nn.Module, path: str):
    for name in path.split("."):
        model = getattr(model, name, None)  # type: ignore[assignment]
        if model is None:
            return None
    return model


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder layer list (the first of :data:`LAYER_PATHS` that ``model`` has)."""
    for path in LAYER_PATHS:
        layers = _at(model, path)
        if isinstance(layers, nn.ModuleList) and len(layers):
            return layers
    raise MoeguardError(
        f"{type(model).__name__} has no decoder layer list (model.layers, model.language_model.layers, ...); "
        "load a language model with moeguard.models.load_model"
    )


@dataclass(kw_only=True)
class MoEModel(MoEShape):
    """A loaded transformers MoE model seen through its routing adapter (its :class:`MoEShape` plus the model).

    ``layers`` are decoder-layer indices that have a router (dense layers are skipped but keep their
    index); ``routers[i]`` is the router module of decoder layer ``i``. ``model`` is the unwrapped
    transformers model (forward calls through it run the wrapper's injected layers, e.g. LoRA).
    ``matched_family`` is set when the model type is not registered and the load-time probe matched the
    adapter (``allow_unregistered=True``).
    """

    model: nn.Module
    #: Whether the model was given as a ``torch.compile`` wrapper (hooks then need dynamo's hook guards).
    compiled: bool = False
    matched_family: str | None = None

    def summary(self) -> dict:
        """Plain-data description for ``moeguard inspect`` and metadata files."""
        summary = {"model_class": type(self.model).__name__, **super().summary()}
        if self.matched_family:
            summary["unregistered_type_matched"] = self.matched_family
        return summary


#: Config keys that give the number of shared (always-on) experts, and keys whose non-zero size means one.
SHARED_COUNT_KEYS = ("n_shared_experts", "num_shared_experts", "moe_num_shared_experts")
SHARED_SIZE_KEYS = (
    "shared_expert_intermediate_size",
    "shared_intermediate_size",
    "moe_shared_expert_intermediate_size",
    "share_expert_dim",
    "shared_experts_intermediate_size",
)


def text_config(config):
    """The language model's config of a (possibly composite) config."""
    get = getattr(config, "get_text_config", None)
    return get() if callable(get) else config


def _shared_experts(config, adapter: RoutingAdapter) -> int:
    """Shared (always-on) experts per MoE layer, from the config keys families use for them."""
    config = text_config(config)
    known = adapter.shared_experts(config)
    if known is not None:
        return known
    for name in SHARED_COUNT_KEYS:
        value = getattr(config, name, None)
        if isinstance(value, int) and value:
            return value
    for name in SHARED_SIZE_KEYS:
        if getattr(config, name, 0):
            return 1
    return 0


def find_routers(model: nn.Module, adapter: RoutingAdapter) -> dict[int, nn.Module]:
    """``{decoder layer: router}`` for the adapter's routers (at most one per layer; parents recorded)."""
    routers: dict[int, nn.Module] = {}
    for index, layer in enumerate(decoder_layers(model)):
        modules = dict(layer.named_modules())
        found = [(name, m) for name, m in modules.items() if name and adapter.is_router(name, m)]
        if len(found) > 1:
            names = ", ".join(name for name, _ in found)
            raise MoeguardError(f"decoder layer {index} has {len(found)} routers ({names}); moeguard expects one")
        if found:
            name, router = found[0]
            adapter.attach(router, modules[name.rpartition(".")[0]])
            routers[index] = router
    return routers


def inspect_moe(
    model: nn.Module,
    adapter: RoutingAdapter | None = None,
    allow_unregistered: bool = False,
    verify: bool = True,
) -> MoEModel:
    """Find the routing adapter and the router of every decoder layer of ``model``, checked at first use.

    ``adapter``: use this adapter instead of the registry's (still checked). ``allow_unregistered``: for a
    model type no adapter is registered for, use the registered family whose rule matches the model's
    routers on the probe (``MoEModel.matched_family`` says which). ``verify=False`` skips the load-time
    check (for code that checks routing itself, e.g. the parity tests). Raises MoeguardError (one line) for
    an unsupported family, a model without routers, or routing that the adapter does not reproduce.
    """
    from moeguard.adapters import probe

    compiled = isinstance(getattr(model, "_orig_mod", None), nn.Module)
    model = unwrap(model)
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    matched = None
    if adapter is None:
        adapter = adapter_for_model_type(model_type) if model_type else None
    if adapter is None:
        adapter = probe.matched_adapter(model)
        if adapter is not None:
            matched = adapter.family
        elif not allow_unregistered:
            raise MoeguardError(
                f"{type(model).__name__} (model_type={model_type!r}) is not a supported MoE family; pass "
                f"--allow-unregistered to try the known routing rules on it; supported model types: "
                f"{', '.join(supported_model_types())}"
            )
        else:
            adapter, _ = probe.match_unregistered(model, _build)
            matched = adapter.family
    moe = _build(model, adapter, compiled, matched)
    if verify:
        probe.check(moe)
    return moe


def _build(model: nn.Module, adapter: RoutingAdapter, compiled: bool = False, matched: str | None = None) -> MoEModel:
    routers = find_routers(model, adapter)
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
        shared_experts=_shared_experts(getattr(model, "config", None), adapter),
        model_type=getattr(getattr(model, "config", None), "model_type", None),
        compiled=compiled,
        matched_family=matched,
    )
