"""Ground truth for routing tests: what each layer's experts module actually receives."""

from __future__ import annotations

import torch

from moeguard import inspect_moe


def experts_inputs(model):
    """Forward pre-hooks on every MoE layer's experts module (not its router): ``seen[layer] = (indices,
    weights)`` as the experts consumed them; returns ``(seen, handles)``."""
    moe = inspect_moe(model)
    seen: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    handles = []
    layers = moe.model.model.layers if hasattr(moe.model, "model") else moe.model.layers
    for layer in moe.layers:
        experts = next(m for n, m in layers[layer].named_modules() if n.endswith("experts"))

        def keep(module, args, kwargs, layer=layer):
            values = list(args) + list(kwargs.values())
            seen[layer] = (values[1], values[2])

        handles.append(experts.register_forward_pre_hook(keep, with_kwargs=True))
    return seen, handles
