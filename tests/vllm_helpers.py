"""Shared setup of the vLLM backend tests: skip without vLLM, a CPU environment for in-process engines,
tiny models vLLM's CPU kernels accept, and the organism's shipped specs."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

# vLLM binds its log handler to the sys.stderr of its first import; under pytest that is one test's capture
# stream, closed afterwards ("--- Logging error ---" in later tests). Let its records go to pytest instead.
os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")

#: Whether vLLM can be imported here (the tests that need it are skipped otherwise).
HAS_VLLM = importlib.util.find_spec("vllm") is not None
#: Marks of every test module that needs vLLM.
needs_vllm = [pytest.mark.vllm, pytest.mark.skipif(not HAS_VLLM, reason='needs vLLM: pip install "moeguard[vllm]"')]

#: Small engines, eager, on one thread, without pinning cores (the machine is shared).
ENGINE = dict(max_model_len=256, max_num_seqs=8)
#: vLLM's CPU attention needs a head size of at least 32 (and MLA exactly 512 + 64).
VLLM_TINY = dict(hidden_size=64, num_attention_heads=2, num_key_value_heads=2, head_dim=32)
VLLM_TINY_FAMILY = {
    "deepseek_v3": dict(
        head_dim=64,
        qk_nope_head_dim=32,
        qk_rope_head_dim=64,
        v_head_dim=32,
        qk_head_dim=96,
        kv_lora_rank=512,
        q_lora_rank=32,
        scoring_func="sigmoid",
        topk_method="noaux_tc",
    ),
    "glm4_moe": dict(scoring_func="sigmoid", topk_method="noaux_tc"),
}


def cpu_environment() -> None:
    """Environment for in-process vLLM engines on a shared CPU (set before the first engine)."""
    for key, value in {
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    }.items():
        os.environ.setdefault(key, value)


def save_vllm_tiny(family: str, folder: Path) -> Path:
    """A tiny random model of ``family`` that vLLM's CPU kernels can run."""
    from moeguard.testing import save_tiny_model

    return save_tiny_model(family, folder, **{**VLLM_TINY, **VLLM_TINY_FAMILY.get(family, {})})


def organism_specs():
    """The organism's shipped ``(unsafe, safe)`` specs (what ``moeguard demo`` selects)."""
    from moeguard.models import resolve_model_path
    from moeguard.steer import SteeringSpec

    card = json.loads((Path(resolve_model_path("builtin:organism")) / "metrics.json").read_text())
    specs = card["behaviours"]["safety"]["specs"]
    return SteeringSpec.from_dict(specs["unsafe steering"]), SteeringSpec.from_dict(specs["safe steering"])
