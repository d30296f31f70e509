"""Which adapter serves which model: keyed by ``config.model_type``; one module per routing family.

Each family module registers its adapters when it is imported (``register_adapter(MyAdapter())`` at its
bottom, like peft's ``register_peft_method``); :func:`load_builtin_adapters` imports every family module of
moeguard once. Registration validates the adapter and refuses a model type that another adapter already
serves, so a family can never silently take over another one's models.
"""

from __future__ import annotations

import importlib
import re

from moeguard.adapters.base import RoutingAdapter

_ADAPTERS: dict[str, RoutingAdapter] = {}

#: Every family module of moeguard (each registers its adapters on import).
BUILTIN_FAMILY_MODULES = (
    "softmax_topk",
    "dbrx",
    "softmax_bias",
    "probability_router",
    "softmax_group",
    "topk_softmax",
    "jetmoe",
    "sigmoid_topk",
    "sigmoid_group",
    "sparsemixer",
    "deepseek_v4",
    "llama4",
    "inkling",
    "zaya",
    "doge",
)

_MODEL_TYPE = re.compile(r"^[a-z][a-z0-9_]*$")
_CLASS_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
_loaded = False


def register_adapter(adapter: RoutingAdapter) -> RoutingAdapter:
    """Make ``adapter`` serve every ``model_type`` it lists.

    Raises ValueError for an adapter without a family name, model types or router classes, for a model type
    that is not a ``config.model_type``-style name, and for a model type another adapter already serves.
    """
    if not isinstance(adapter, RoutingAdapter):
        raise ValueError(f"register_adapter expects a RoutingAdapter instance, got {type(adapter).__name__}")
    name = type(adapter).__name__
    if not adapter.family.strip():
        raise ValueError(f"{name} has no family name; set its 'family' attribute")
    if not adapter.model_types:
        raise ValueError(f"{name} lists no model types; set its 'model_types' attribute")
    if not adapter.router_class_names or not all(_CLASS_NAME.match(c) for c in adapter.router_class_names):
        raise ValueError(f"{name} must list the class names of its routers in 'router_class_names'")
    if len(set(adapter.model_types)) != len(adapter.model_types):
        raise ValueError(f"{name} lists a model type twice: {sorted(adapter.model_types)}")
    for model_type in adapter.model_types:
        if not _MODEL_TYPE.match(model_type):
            raise ValueError(f"{model_type!r} is not a model type name (lowercase letters, digits, '_')")
        if model_type in _ADAPTERS and _ADAPTERS[model_type] is not adapter:
            other = type(_ADAPTERS[model_type]).__name__
            raise ValueError(f"model type {model_type!r} is already served by {other}; choose a unique model type")
    for model_type in adapter.model_types:
        _ADAPTERS[model_type] = adapter
    return adapter


def unregister_adapter(adapter: RoutingAdapter) -> None:
    """Remove every model type ``adapter`` serves (tests, plug-ins replacing a family)."""
    for model_type in [t for t, a in _ADAPTERS.items() if a is adapter]:
        del _ADAPTERS[model_type]


def load_builtin_adapters() -> None:
    """Import moeguard's family modules (each registers itself), once."""
    global _loaded
    if _loaded:
        return
    for module in BUILTIN_FAMILY_MODULES:
        importlib.import_module(f"moeguard.adapters.{module}")
    _loaded = True


def supported_model_types() -> list[str]:
    """Every ``config.model_type`` with a registered adapter, sorted."""
    load_builtin_adapters()
    return sorted(_ADAPTERS)


def adapter_for_model_type(model_type: str) -> RoutingAdapter | None:
    """The adapter registered for ``model_type``, or None."""
    load_builtin_adapters()
    return _ADAPTERS.get(model_type)


def registered_adapters() -> list[RoutingAdapter]:
    """Every registered adapter once, in registration order."""
    load_builtin_adapters()
    seen: dict[int, RoutingAdapter] = {}
    for adapter in _ADAPTERS.values():
        seen.setdefault(id(adapter), adapter)
    return list(seen.values())
