"""The transformers model under wrappers, and where its inputs go.

``unwrap`` sees through PEFT (``PeftModel``: LoRA layers stay injected in the base model's modules),
DDP / FSDP / DeepSpeed / accelerate (``.module``) and ``torch.compile`` (``._orig_mod``). Routers are the
same module objects under every wrapper, so hooks placed through the unwrapped model act on the wrapped
one too.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn


def unwrap(model: nn.Module) -> nn.Module:
    """The innermost transformers model of ``model`` (itself when it is not wrapped)."""
    for _ in range(16):
        inner: nn.Module
        get_base = getattr(model, "get_base_model", None)
        if callable(get_base):
            inner = get_base()
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):
            inner = model._orig_mod  # type: ignore[assignment]
        elif isinstance(getattr(model, "module", None), nn.Module):
            inner = model.module  # type: ignore[assignment]
        else:
            return model
        if inner is model:
            return model
        model = inner
    return model


def input_device(model: nn.Module) -> torch.device:
    """Where input ids must go: the input embeddings' device (first parameter's otherwise)."""
    base = unwrap(model)
    get = getattr(base, "get_input_embeddings", None)
    embeddings = get() if callable(get) else None
    if embeddings is not None and getattr(embeddings, "weight", None) is not None:
        return embeddings.weight.device
    return next(base.parameters()).device


def routing_forward_kwargs(model: nn.Module) -> dict:
    """Keyword arguments that skip work a routing-only forward does not need: no KV cache, and the LM
    head on one position only (``logits_to_keep=1``) when the model accepts them."""
    try:
        params = inspect.signature(unwrap(model).forward).parameters
    except (TypeError, ValueError):
        return {}
    kwargs: dict = {}
    if "logits_to_keep" in params:
        kwargs["logits_to_keep"] = 1
    if "use_cache" in params:
        kwargs["use_cache"] = False
    return kwargs
