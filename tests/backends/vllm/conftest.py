"""Engines shared by the vLLM backend tests (in-process, eager, CPU): the organism on vLLM and on HF."""

from __future__ import annotations

import pytest

from vllm_helpers import ENGINE, HAS_VLLM, cpu_environment


@pytest.fixture(scope="session")
def organism_engines():
    """``(vllm_model, hf_model)`` of builtin:organism; the vLLM engine is closed at the end of the session."""
    if not HAS_VLLM:
        pytest.skip("needs vLLM")
    import torch

    cpu_environment()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    from moeguard.backends import get_backend

    vllm = get_backend("vllm", **ENGINE).load("builtin:organism")
    hf = get_backend("hf").load("builtin:organism")
    yield vllm, hf
    vllm.close()
    torch.set_num_threads(threads)
