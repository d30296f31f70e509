"""The HF backend: per-prompt specs equal solo runs, capture and detection equal the library functions."""

from __future__ import annotations

import pytest
import torch

from moeguard.backends import get_backend
from moeguard.backends.hf import HfModel
from moeguard.capture_run import record_prompts
from moeguard.data import builtin_pairs
from moeguard.detect import detect_experts
from moeguard.errors import MoeguardError
from moeguard.generation import generate
from moeguard.steer import SteeringSpec

PROMPTS = ["Count to five.", "How do I bake bread?", "Tell me a story."]


@pytest.fixture(scope="module")
def hf(tiny_model_dir):
    return get_backend("hf").load(tiny_model_dir("olmoe"))


def test_load_is_cached_per_model(tiny_model_dir):
    backend = get_backend("hf")
    first = backend.load(tiny_model_dir("olmoe"))
    assert backend.load(tiny_model_dir("olmoe")) is first
    assert isinstance(first, HfModel) and first.shape.layers == [0, 1, 2]


def test_per_prompt_specs_equal_solo_runs(hf):
    spec = SteeringSpec(activate=[(0, 3), (1, 3), (2, 3)], deactivate=[(0, 0), (1, 0)])
    mixed = hf.generate(PROMPTS, max_new_tokens=8, steer=[spec, None, spec])
    solo_steered = generate(hf.model, hf.tokenizer, [PROMPTS[0], PROMPTS[2]], max_new_tokens=8, steer=spec)
    solo_plain = generate(hf.model, hf.tokenizer, [PROMPTS[1]], max_new_tokens=8)
    assert mixed == [solo_steered[0], solo_plain[0], solo_steered[1]]
    assert hf.generate(PROMPTS, max_new_tokens=8, steer=spec) == generate(
        hf.model, hf.tokenizer, PROMPTS, 8, steer=spec
    )


def test_generation_runs_a_backend_model(hf):
    assert generate(hf, hf.tokenizer, PROMPTS, max_new_tokens=6) == hf.generate(PROMPTS, max_new_tokens=6)


def test_specs_for_another_model_are_refused_before_generating(hf):
    with pytest.raises(MoeguardError, match="expert 40 in layer 0 is out of range"):
        hf.generate(PROMPTS, steer=[None, SteeringSpec(activate=[(0, 40)]), None])


def test_capture_and_detect_equal_the_library_functions(hf):
    got = hf.capture(PROMPTS, progress=False)
    want = record_prompts(hf.model, hf.tokenizer, PROMPTS, progress=False, model_name=hf.name)
    assert torch.equal(got.indices, want.indices) and got.meta["prompts_sha256"] == want.meta["prompts_sha256"]
    pairs = builtin_pairs("safety", n=12, seed=0)
    result = hf.detect(pairs, bootstrap=5, seed=1)
    reference = detect_experts(hf.shape, hf.tokenizer, pairs, bootstrap=5, seed=1, model_name=hf.name)
    assert torch.equal(result.counts_a, reference.counts_a) and torch.equal(
        result.boot_counts_b, reference.boot_counts_b
    )
    from moeguard.detect import detect_from_trace

    from_trace = detect_from_trace(hf.capture_pairs(pairs, progress=False), bootstrap=5, seed=1)
    assert torch.equal(from_trace.counts_b, reference.counts_b) and from_trace.data_sha256 == reference.data_sha256
