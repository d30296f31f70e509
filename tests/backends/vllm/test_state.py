"""Worker state: request parsing, slots filled from SteeringSpec.edits, token layout, capture traces."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from moeguard.adapters.softmax_topk import SoftmaxTopKAdapter
from moeguard.backends.vllm import steer_args
from moeguard.backends.vllm.client import capture_args
from moeguard.backends.vllm.state import (
    DEFAULT_SPEC,
    RequestTrace,
    SteeringState,
    capture_tag,
    request_spec,
    write_trace,
)
from moeguard.errors import MoeguardError
from moeguard.routing import MoEShape, RoutingTrace
from moeguard.steer import SteeringSpec

E, K = 8, 2


def shape(layers=(0, 2, 3)) -> MoEShape:
    routers = {layer: SimpleNamespace(top_k=K, num_experts=E) for layer in layers}
    return MoEShape(
        adapter=SoftmaxTopKAdapter(), routers=routers, num_experts=E, top_k=K, num_decoder_layers=4, model_type="olmoe"
    )


def state(**kwargs) -> SteeringState:
    return SteeringState(shape(), max_tokens=32, max_slots=4, device=torch.device("cpu"), static_graph=False, **kwargs)


HARD = SteeringSpec(activate=[(2, 5)], deactivate=[(0, 1), (0, 2)])
SOFT = SteeringSpec(activate=[(3, 4)], deactivate=[(3, 0)], mode="soft", alpha=1.5)


def test_request_spec_reads_json_names_and_the_default():
    key, spec = request_spec(steer_args(HARD), {})
    assert spec == HARD and json.loads(key) == HARD.to_dict()
    assert request_spec({"moeguard_steer": HARD.to_dict()}, {})[1] == HARD
    assert request_spec({"moeguard_steer": "unsafe"}, {"unsafe": SOFT})[1] == SOFT
    assert request_spec(None, {}) is None and request_spec({}, {}) is None
    assert request_spec(None, {DEFAULT_SPEC: SOFT})[1] == SOFT  # requests without a spec get the default
    assert request_spec(steer_args(SteeringSpec()), {DEFAULT_SPEC: SOFT}) is None  # ... unless they opt out
    with pytest.raises(MoeguardError, match="neither spec JSON nor a preloaded spec name"):
        request_spec({"moeguard_steer": "unknown"}, {"unsafe": SOFT})


def test_capture_tag():
    assert capture_tag(capture_args("t1"), "req") == "t1"
    assert capture_tag({"moeguard_capture": 1}, "req") == "req"
    assert capture_tag({}, "req") is None and capture_tag(None, "req") is None


def test_slots_hold_the_specs_edits_per_moe_layer():
    s = state()
    hard, soft = s.slot_for("h", HARD), s.slot_for("s", SOFT)
    assert hard != soft and 0 not in (hard, soft)
    edits = HARD.edits(s.shape)
    assert torch.equal(s.deactivate[hard, 0], edits[0].deactivate)  # decoder layer 0 -> row 0
    assert torch.equal(s.activate[hard, 1], edits[2].activate)  # decoder layer 2 -> row 1
    assert s.steers[hard].tolist() == [True, True, False]
    assert not s.activate[hard, 0].any() and not s.shift[hard].any()
    assert torch.equal(s.shift[soft, 2], SOFT.edits(s.shape)[3].shift)
    assert s.steers[soft].tolist() == [False, False, True]
    assert s.slot_for("h", HARD) == hard  # one slot per distinct spec
    assert not s.steers[0].any()  # slot 0 is never written


def test_slots_validate_against_the_served_shape_and_run_out():
    s = state()
    with pytest.raises(MoeguardError, match="decoder layer 1 has no router"):
        s.slot_for("x", SteeringSpec(deactivate=[(1, 0)]))
    for i in range(3):
        s.slot_for(f"k{i}", SteeringSpec(deactivate=[(0, i)]))
    with pytest.raises(MoeguardError, match="max_specs"):
        s.slot_for("k9", SteeringSpec(deactivate=[(0, 5)]))
    s.release_except({"k0"})
    s.slot_for("k9", SteeringSpec(deactivate=[(0, 5)]))


def test_begin_step_lays_out_token_slots_and_frees_finished_specs():
    s = state()
    live = {"a": steer_args(HARD), "b": None, "c": steer_args(SOFT) | capture_args("c-tag")}
    s.begin_step(["a", "b", "c"], np.array([0, 3, 4, 6]), np.array([0, 7, 2]), live)
    slots = s.token_slot[:6].tolist()
    assert slots[:3] == [slots[0]] * 3 and slots[3] == 0 and slots[4] == slots[5] != slots[0]
    assert s.active and s.capturing and s.stats["mixed_steps"] == 1
    s.ids[:, 4:6] = torch.tensor([[1, 2], [3, 4]], dtype=torch.int32)
    s.end_step()
    s.begin_step(["b"], np.array([0, 2]), np.array([8]), {"b": None})  # a and c finished
    assert s.token_slot[:6].tolist() == [0] * 6 and not s.active and not s.capturing
    assert len(s._free) == 3  # both slots came back
    chunk = s.traces["c-tag"].chunks[0]
    assert chunk[0] == 2 and chunk[1].shape == (3, 2, K)


def test_request_trace_joins_chunks_in_position_order_and_names_gaps():
    trace = RequestTrace()
    ids = torch.arange(3 * 5 * K, dtype=torch.int32).view(3, 5, K)
    trace.chunks += [(3, ids[:, 3:], ids[:, 3:].float(), None), (0, ids[:, :3], ids[:, :3].float(), None)]
    assert torch.equal(trace.tensors()["indices"], ids)
    gappy = RequestTrace([(0, ids[:, :2], ids[:, :2].float(), None), (3, ids[:, 3:], ids[:, 3:].float(), None)])
    with pytest.raises(MoeguardError, match="positions 2..2; disable prefix caching"):
        gappy.tensors()


def test_finished_requests_are_written_as_routing_traces(tmp_path):
    s = state(capture_dir=tmp_path)
    s.begin_step(["r"], np.array([0, 4]), np.array([0]), {"r": capture_args("r-1")})
    s.ids[:, :4] = torch.randint(0, E, (3, 4, K), dtype=torch.int32)
    s.weights[:, :4] = torch.rand(3, 4, K)
    s.end_step()
    (path,) = s.finish({"r": [11, 12, 13, 14, 15]})
    trace = RoutingTrace.load(path)
    assert path.name == "r-1.safetensors" and trace.layers == [0, 2, 3] and trace.num_samples == 1
    assert torch.equal(trace.indices, s.ids[:, :4].permute(1, 0, 2).long())
    assert trace.input_ids.tolist() == [11, 12, 13, 14] and trace.meta["request"] == "r"
    with pytest.raises(MoeguardError, match="not a safe file name"):
        write_trace(tmp_path, "../x", {"indices": torch.zeros(3, 1, K), "weights": torch.zeros(3, 1, K)}, s.shape)


def test_preloaded_specs_are_validated():
    with pytest.raises(MoeguardError, match="preloaded spec 'bad'"):
        state(named_specs={"bad": SteeringSpec(activate=[(0, 99)])})


def test_requests_sharing_a_capture_tag_get_numbered_tags():
    s = state()
    live = {rid: capture_args("t") for rid in ("a", "b", "c")}
    s.begin_step(["a", "b", "c"], np.array([0, 1, 2, 3]), np.array([0, 0, 0]), live)
    s.end_step()
    s.begin_step(["b", "a", "c"], np.array([0, 1, 2, 3]), np.array([1, 1, 1]), live)  # the batch reorders
    s.end_step()
    assert sorted(s.traces) == ["t", "t-1", "t-2"]
    assert s.traces["t"].tensors()["indices"].shape[1] == 2  # request a, both steps, under one tag
