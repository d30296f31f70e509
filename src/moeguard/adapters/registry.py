"""Which adapter serves which model: keyed by ``config.model_type``; one module per routing family."""

from __future__ import annotations

from moeguard.adapters.base import RoutingAdapter
from moeguard.adapters.sigmoid_group import DeepseekV3Adapter
from moeguard.adapters.softmax_topk import MixtralAdapter, SoftmaxTopKAdapter
from moeguard.adapters.sparsemixer import PhimoeAdapter
from moeguard.adapters.topk_softmax import GptOssAdapter, GraniteMoeAdapter

_ADAPTERS: dict[str, RoutingAdapter] = {}


def register_adapter(adapter: RoutingAdapter) -> RoutingAdapter:
    """Make ``adapter`` serve every ``model_type`` it lists (later registrations win)."""
    for model_type in adapter.model_types:
        _ADAPTERS[model_type] = adapter
    return adapter


for _adapter in (
    SoftmaxTopKAdapter(),
    MixtralAdapter(),
    GptOssAdapter(),
    GraniteMoeAdapter(),
    PhimoeAdapter(),
    DeepseekV3Adapter(),
):
    register_adapter(_adapter)


def supported_model_types() -> list[str]:
    """Every ``config.model_type`` with a registered adapter, sorted."""
    return sorted(_ADAPTERS)


def adapter_for_model_type(model_type: str) -> RoutingAdapter | None:
    """The adapter registered for ``model_type``, or None."""
    return _ADAPTERS.get(model_type)
