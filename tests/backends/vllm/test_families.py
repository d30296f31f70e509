"""Tiny random models of every family vLLM serves on CPU: greedy text and selected experts equal the HF path,
plain and steered (hard and soft). (A family vLLM routes outside its fused-MoE router is refused: test_cli.py.)"""

from __future__ import annotations

import pytest
import torch

from moeguard.steer import SteeringSpec
from vllm_helpers import ENGINE, cpu_environment, needs_vllm, save_vllm_tiny

pytestmark = [*needs_vllm, pytest.mark.slow]

PROMPTS = ["Count to five.", "How do I bake bread?", "Tell me a story about a cat.", "What is two plus two?"]
#: Every family with a native vLLM model class and a moeguard adapter that runs on vLLM's CPU build.
FAMILIES = [
    "olmoe",
    "qwen3_moe",
    "mixtral",
    "qwen2_moe",
    "deepseek_v3",
    "glm4_moe",
    "gpt_oss",
    "granitemoe",
    "granitemoeshared",
]


@pytest.fixture(scope="module")
def backends():
    cpu_environment()
    from moeguard.backends import get_backend

    vllm = get_backend("vllm", **{**ENGINE, "max_model_len": 128, "max_num_seqs": 4})
    yield vllm, get_backend("hf")
    vllm.close()


def specs(layers):
    first, last = layers[0], layers[-1]
    return [
        None,
        SteeringSpec(activate=[(first, 3)], deactivate=[(last, 0), (last, 1)]),
        SteeringSpec(activate=[(last, 5)], deactivate=[(first, 2)], mode="soft", alpha=2.0),
    ]


@pytest.mark.parametrize("family", FAMILIES)
def test_family_matches_hf(family, backends, tmp_path):
    vllm_backend, hf_backend = backends
    folder = str(save_vllm_tiny(family, tmp_path / family))
    vllm, hf = vllm_backend.load(folder), hf_backend.load(folder)
    assert vllm.shape.summary() == {k: v for k, v in hf.shape.summary().items() if k != "model_class"}
    for spec in specs(vllm.shape.layers):
        assert vllm.generate(PROMPTS, 16, steer=spec) == hf.generate(PROMPTS, 16, steer=spec)
        got, want = vllm.capture(PROMPTS, steer=spec, progress=False), hf.capture(PROMPTS, steer=spec, progress=False)
        same = (got.indices.sort(-1)[0] == want.indices.sort(-1)[0]).all(-1)  # [rows, layers]
        if family == "deepseek_v3":
            # vLLM's MLA attention on CPU gives router logits up to ~1e-2 away from transformers' from the
            # second token on (position 0 is exact), so near-tied experts flip on a few rows of a random model;
            # routing itself is exact on identical logits (test_router.py, and glm4_moe: the same adapter).
            assert bool(same[got.positions == 0].all()) and float(same.float().mean()) > 0.95
        else:
            assert bool(same.all())
            order_got, order_want = got.indices.argsort(-1), want.indices.argsort(-1)
            torch.testing.assert_close(
                got.weights.gather(-1, order_got), want.weights.float().gather(-1, order_want), rtol=1e-4, atol=1e-5
            )
