"""The hook registry: one registry per model, at most one torch hook per router and only while needed,
levels that remove what was added inside them, edits before readers, composition of nested uses."""

from __future__ import annotations

import pytest
import torch

from moeguard import RoutingRecorder, SteeringSpec, inspect_moe
from moeguard.routing import ExpertEdit, RouterHooks


def torch_hooks(model) -> int:
    return sum(len(r._forward_hooks) for r in inspect_moe(model).routers.values())


def test_one_registry_per_model_and_hooks_only_while_registered(load_tiny):
    model, _ = load_tiny("olmoe")
    hooks = RouterHooks.of(model)
    assert RouterHooks.of(inspect_moe(model)) is hooks is RouterHooks.of(model)
    assert torch_hooks(model) == 0
    first = hooks.add_reader(lambda call: None)
    second = hooks.add_reader(lambda call: None)
    assert torch_hooks(model) == len(inspect_moe(model).layers)  # one per router, however many readers
    first.remove()
    first.remove()  # idempotent
    assert torch_hooks(model) == len(inspect_moe(model).layers)
    second.remove()
    assert torch_hooks(model) == 0 and not hooks.active


def test_context_removes_what_was_added_inside_also_on_error(load_tiny):
    model, _ = load_tiny("olmoe")
    hooks = RouterHooks.of(model)
    outside = hooks.add_reader(lambda call: None, layers=[0])
    with pytest.raises(RuntimeError, match="boom"), hooks.context():
        hooks.add_edit(1, ExpertEdit.from_experts(8, deactivate=[0]))
        with hooks.context():
            hooks.add_reader(lambda call: None)
        assert len(hooks._handles) == 2  # the inner level is gone, the outer edit stays
        raise RuntimeError("boom")
    assert outside.active and len(hooks._handles) == 1 and hooks.level == 0
    outside.remove()
    assert torch_hooks(model) == 0


def test_readers_see_edited_routing_whatever_the_nesting_order(load_tiny, padded_batch):
    model, _ = load_tiny("olmoe")
    ids, mask = padded_batch
    spec = SteeringSpec(deactivate=[(0, e) for e in range(4)])
    traces = []
    for order in ("recorder first", "steering first"):
        recorder = RoutingRecorder(model, counts=True)
        if order == "recorder first":
            with recorder, spec.apply(model):
                recorder.run(ids, mask)
        else:
            with spec.apply(model), recorder:
                recorder.run(ids, mask)
        traces.append(recorder.counts)
    assert torch.equal(traces[0], traces[1])
    assert traces[0][0, :4].sum() == 0 and traces[0][0].sum() > 0


def test_nested_steering_composes_later_wins(load_tiny, padded_batch):
    model, _ = load_tiny("olmoe")
    ids, mask = padded_batch

    def layer0_counts():
        recorder = RoutingRecorder(model)
        with recorder:
            recorder.run(ids, mask)
        return recorder.counts[0]

    with SteeringSpec(deactivate=[(0, 3), (0, 4)]).apply(model):
        with SteeringSpec(activate=[(0, 3)]).apply(model):
            inner = layer0_counts()
        outer = layer0_counts()
    tokens = int(mask.sum())
    assert inner[3] == tokens and inner[4] == 0  # inner activation overrides outer deactivation of 3
    assert outer[3] == 0 and outer[4] == 0
    assert torch_hooks(model) == 0


def test_dynamic_edit_source_is_read_on_every_call(load_tiny, padded_batch):
    model, _ = load_tiny("olmoe")
    ids, mask = padded_batch
    current = {"edit": None}
    handle = RouterHooks.of(model).add_edit(0, lambda: current["edit"])
    seen = []
    reader = RouterHooks.of(model).add_reader(lambda call: seen.append(call.edited), layers=[0])
    try:
        with torch.no_grad():
            model(input_ids=ids, attention_mask=mask)
            current["edit"] = ExpertEdit.from_experts(8, activate=[7])
            model(input_ids=ids, attention_mask=mask)
    finally:
        handle.remove()
        reader.remove()
    assert seen == [False, True]
