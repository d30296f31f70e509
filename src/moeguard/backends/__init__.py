"""Engines behind one interface: generation and routing capture on Hugging Face transformers (``hf``, the
default) or vLLM (``vllm``, the optional extra ``moeguard[vllm]``).

>>> backend = get_backend("vllm")
>>> backend.generate("builtin:organism", prompts, max_new_tokens=40, steer=[unsafe, None, safe])
>>> trace = backend.capture("builtin:organism", prompts)        # RoutingTrace, as `moeguard capture`

Both engines apply the same steering (the routing core's :class:`~moeguard.routing.ExpertEdit` through the
family's adapter) and give the same greedy tokens and selected experts; see
:mod:`moeguard.backends.base` for the interface and ``backends/vllm/README.md`` for the vLLM engine.
No core module imports ``moeguard.backends.vllm``: it is loaded here, only when asked for.
"""

from __future__ import annotations

from typing import Any

from moeguard.backends.base import Backend, BackendModel, per_prompt
from moeguard.errors import MoeguardError

__all__ = ["BACKENDS", "Backend", "BackendModel", "get_backend", "per_prompt"]

#: Backend names, the default first.
BACKENDS = ("hf", "vllm")


def get_backend(name: str = "hf", **options: Any) -> Backend:
    """The backend ``name`` (``hf`` or ``vllm``); ``options`` configure its engine (see each backend).

    A vLLM call without vLLM installed raises one line naming the extra to install.
    """
    if name == "hf":
        from moeguard.backends.hf import HfBackend

        return HfBackend(**options)
    if name == "vllm":
        from moeguard.backends.vllm.engine import VllmBackend

        return VllmBackend(**options)
    raise MoeguardError(f"unknown backend {name!r}; use one of {', '.join(BACKENDS)}")
