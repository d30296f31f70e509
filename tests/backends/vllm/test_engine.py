"""End to end on vLLM (CPU, in-process): the organism's greedy text and selected experts equal the HF path,
plain and under the demo's safe and unsafe specs, per request in one batch, in capture and in detection."""

from __future__ import annotations

import pytest
import torch

from moeguard.builtin import resolve
from moeguard.data import builtin_pairs
from moeguard.detect_run import DetectionRun, Selection
from moeguard.errors import MoeguardError
from moeguard.routing import RoutingRecorder
from moeguard.steer import SteeringSpec
from vllm_helpers import ENGINE, cpu_environment, needs_vllm, organism_specs

pytestmark = [*needs_vllm, pytest.mark.slow]

MAX_NEW = 40  # as the demo


@pytest.fixture(scope="module")
def prompts():
    return resolve("prompts", "organism-heldout-harmful", n=None, seed=0)


def hf_routing(hf, sequence, spec):
    """The HF recorder's routing ``[T, layers, k]`` of one token sequence, under ``spec``."""
    recorder = RoutingRecorder(hf.shape, counts=False, traces=True)
    ids = torch.tensor([sequence])
    if spec is not None:
        with spec.apply(hf.shape), recorder:
            recorder.run(ids)
    else:
        with recorder:
            recorder.run(ids)
    return recorder.trace()


def generated_routing_equal(vllm, hf, prompts, spec, n=12):
    """vLLM's captured routing while generating (prompt + generated - 1 tokens) equals the HF recorder's on
    the same tokens, as expert sets per (token, layer); returns the largest weight difference."""
    from moeguard.chat import encode_texts, format_prompt

    sequences = encode_texts(hf.tokenizer, [format_prompt(hf.tokenizer, p) for p in prompts[:n]])
    outputs, traces = vllm.run(sequences, [spec] * n, MAX_NEW, capture=True)
    worst = 0.0
    for seq, out, tensors in zip(sequences, outputs, traces, strict=True):
        run = seq + list(out.outputs[0].token_ids)[:-1]
        want = hf_routing(hf, run, spec)
        got = tensors["indices"].permute(1, 0, 2).long()
        assert got.shape == want.indices.shape
        got_sorted, got_order = got.sort(-1)
        want_sorted, want_order = want.indices.sort(-1)
        assert torch.equal(got_sorted, want_sorted)
        got_w = tensors["weights"].permute(1, 0, 2).gather(-1, got_order)
        worst = max(worst, float((got_w - want.weights.float().gather(-1, want_order)).abs().max()))
    return worst


def test_plain_greedy_text_and_experts_equal_hf(organism_engines, prompts):
    vllm, hf = organism_engines
    assert vllm.generate(prompts, MAX_NEW) == hf.generate(prompts, MAX_NEW)
    assert generated_routing_equal(vllm, hf, prompts, None) < 1e-5


@pytest.mark.parametrize("name", ["unsafe", "safe"])
def test_demo_specs_give_hf_text_and_experts(organism_engines, prompts, name):
    vllm, hf = organism_engines
    spec = dict(zip(("unsafe", "safe"), organism_specs(), strict=True))[name]
    got = vllm.generate(prompts, MAX_NEW, steer=spec)
    assert got == hf.generate(prompts, MAX_NEW, steer=spec)
    assert generated_routing_equal(vllm, hf, prompts, spec) < 1e-5
    if name == "unsafe":  # the spec matters: refusals turn into answers
        plain = vllm.generate(prompts, MAX_NEW)
        assert sum(a != b for a, b in zip(got, plain, strict=True)) > len(prompts) // 2


def test_one_batch_of_unsafe_none_safe_requests_equals_solo_runs(organism_engines, prompts):
    vllm, hf = organism_engines
    unsafe, safe = organism_specs()
    some = prompts[:16]
    before = vllm.stats()["mixed_steps"]
    batch = vllm.generate([p for p in some for _ in range(3)], MAX_NEW, steer=[unsafe, None, safe] * len(some))
    assert vllm.stats()["mixed_steps"] > before  # the specs really shared forward passes
    for offset, spec in enumerate((unsafe, None, safe)):
        assert batch[offset::3] == vllm.generate(some, MAX_NEW, steer=spec) == hf.generate(some, MAX_NEW, steer=spec)


def test_capture_of_prompts_equals_the_hf_capture(organism_engines, prompts):
    vllm, hf = organism_engines
    unsafe, _ = organism_specs()
    for spec in (None, unsafe):
        got = vllm.capture(prompts[:20], steer=spec, progress=False)
        want = hf.capture(prompts[:20], steer=spec, progress=False)
        assert torch.equal(got.lengths, want.lengths) and torch.equal(got.tokens, want.tokens)
        assert torch.equal(got.indices.sort(-1)[0], want.indices.sort(-1)[0])
        assert torch.equal(got.input_ids, want.input_ids) and torch.equal(got.positions, want.positions)
        assert got.meta["prompts_sha256"] == want.meta["prompts_sha256"] and got.meta["backend"] == "vllm"
        assert torch.equal(got.counts(), want.counts())


def test_detection_through_vllm_gives_the_hf_experts_table(organism_engines):
    vllm, hf = organism_engines
    pairs = builtin_pairs("safety", n=200, seed=0)
    got = vllm.detect(pairs, bootstrap=50, seed=0, batch_size=8)
    want = hf.detect(pairs, bootstrap=50, seed=0, batch_size=8)
    assert got.data_sha256 == want.data_sha256 and (got.tokens_a, got.tokens_b) == (want.tokens_a, want.tokens_b)
    selection = Selection(n_activate=1, n_deactivate=8, reverse=True)
    got_run, want_run = DetectionRun.from_result(got, selection), DetectionRun.from_result(want, selection)
    assert got_run.rows() == want_run.rows()  # experts.csv, every value
    assert got_run.spec == want_run.spec


def test_a_spec_for_another_model_is_refused_before_anything_runs(organism_engines, prompts):
    vllm, _ = organism_engines
    steps = vllm.stats()["steps"]
    with pytest.raises(MoeguardError, match="steering layer 6 is out of range"):
        vllm.generate(prompts[:3], 4, steer=[None, SteeringSpec(deactivate=[(6, 0)]), None])
    with pytest.raises(MoeguardError, match="expert 16 in layer 0 is out of range"):
        vllm.capture(prompts[:1], steer=SteeringSpec(activate=[(0, 16)]), progress=False)
    assert vllm.stats()["steps"] == steps
    assert vllm.generate(prompts[:1], 4)  # the engine still serves


def test_compiled_engine_gives_the_same_text_and_experts(organism_engines, prompts):
    """vLLM's CPU default (Dynamo + inductor, graph-safe wrappers): the same parity as eager."""
    _, hf = organism_engines
    cpu_environment()
    from moeguard.backends import get_backend

    compiled = get_backend("vllm", **{**ENGINE, "enforce_eager": False}).load("builtin:organism")
    try:
        assert compiled.info["static_graph"] is True
        unsafe, safe = organism_specs()
        some = prompts[:24]
        batch = compiled.generate([p for p in some for _ in range(3)], MAX_NEW, steer=[unsafe, None, safe] * 24)
        for offset, spec in enumerate((unsafe, None, safe)):
            assert batch[offset::3] == hf.generate(some, MAX_NEW, steer=spec)
        assert generated_routing_equal(compiled, hf, prompts, unsafe, n=6) < 1e-5
    finally:
        compiled.close()
