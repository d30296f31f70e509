"""The ``vllm.general_plugins`` entry point: vLLM calls ``register()`` in every process it starts.

It only patches vLLM's model-runner classes; nothing changes for an engine unless its
``additional_config`` has a ``"moeguard"`` object (see ``moeguard.backends.vllm``).
"""

from __future__ import annotations


def register() -> None:
    """Patch vLLM's model runners (idempotent; vLLM may call plugins several times per process)."""
    from moeguard.backends.vllm.runner import patch_model_runners

    patch_model_runners()
