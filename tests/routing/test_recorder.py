"""RoutingRecorder: streaming counts agree with traces, recorded routing is what the experts receive,
pads are never recorded, selections and gradients."""

from __future__ import annotations

import pytest
import torch
from routing_helpers import experts_inputs

from moeguard import MoeguardError, RoutingRecorder, inspect_moe
from moeguard.testing import TINY_FAMILIES


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_recorded_routing_is_what_the_experts_module_receives(family, load_tiny, padded_batch):
    model, _ = load_tiny(family)
    moe = inspect_moe(model)
    ids, mask = padded_batch
    seen, handles = experts_inputs(model)
    recorder = RoutingRecorder(model, counts=True, traces=True, logits=True)
    try:
        with recorder:
            recorder.run(ids, torch.ones_like(mask))  # every token, so rows align with the experts' inputs
    finally:
        for handle in handles:
            handle.remove()
    trace = recorder.trace()
    assert trace.indices.shape == (ids.numel(), len(moe.layers), moe.top_k)
    for position, layer in enumerate(moe.layers):
        indices, weights = seen[layer]
        assert torch.equal(trace.indices[:, position], indices.reshape(-1, moe.top_k)), f"{family} {layer}"
        assert torch.equal(trace.weights[:, position], weights.reshape(-1, moe.top_k)), f"{family} {layer}"
    assert trace.logits.shape == (ids.numel(), len(moe.layers), moe.num_experts)


@pytest.mark.parametrize("family", ["olmoe", "qwen2_moe", "deepseek_v3", "phimoe"])
def test_streaming_counts_equal_counts_from_traces(family, load_tiny, padded_batch):
    model, _ = load_tiny(family)
    moe = inspect_moe(model)
    ids, mask = padded_batch
    recorder = RoutingRecorder(model, counts=True, traces=True, logits=True)
    with recorder:
        recorder.run(ids, mask)
        recorder.run(ids[:2, :5], mask[:2, :5])
    trace = recorder.trace()
    assert trace.lengths.tolist() == [9, 6, 4, 5, 5]
    assert recorder.tokens == int(mask.sum()) + 10 == trace.num_rows
    assert torch.equal(recorder.counts, trace.counts())
    assert torch.equal(trace.sample_counts().sum(0), trace.counts())
    assert recorder.counts.sum() == recorder.tokens * moe.top_k * len(moe.layers)
    # the positions and token ids of recorded rows are those of the real tokens
    assert trace.positions[:9].tolist() == list(range(9)) and torch.equal(trace.input_ids[:9], ids[0])


def test_pad_tokens_are_never_counted(load_tiny, padded_batch):
    model, _ = load_tiny("olmoe")
    ids, mask = padded_batch
    recorder = RoutingRecorder(model)
    with recorder:
        recorder.run(ids, mask)
    padded_counts, padded_tokens = recorder.counts.clone(), recorder.tokens
    recorder.reset()
    with recorder:
        for row in range(ids.shape[0]):
            length = int(mask[row].sum())
            recorder.run(ids[row : row + 1, :length])
    assert padded_tokens == recorder.tokens == int(mask.sum())
    assert torch.equal(padded_counts, recorder.counts)


def test_left_padding_matches_right_padding(load_tiny, padded_batch):
    model, _ = load_tiny("qwen3_moe")
    ids, mask = padded_batch
    left_ids, left_mask = torch.zeros_like(ids), torch.zeros_like(mask)
    for row in range(ids.shape[0]):
        n = int(mask[row].sum())
        left_ids[row, ids.shape[1] - n :] = ids[row, :n]
        left_mask[row, ids.shape[1] - n :] = 1
    counts = []
    for batch in ((ids, mask), (left_ids, left_mask)):
        recorder = RoutingRecorder(model)
        with recorder:
            recorder.run(*batch)
        counts.append(recorder.counts)
    assert torch.equal(counts[0], counts[1])


def test_count_mask_and_row_selection(load_tiny, padded_batch):
    model, _ = load_tiny("olmoe")
    ids, mask = padded_batch
    only_two = torch.zeros_like(mask)
    only_two[:, 2:4] = 1
    recorder = RoutingRecorder(model, traces=True)
    with recorder:
        recorder.run(ids, mask, count_mask=only_two)
    assert recorder.tokens == 6 and recorder.trace().lengths.tolist() == [2, 2, 2]
    full = RoutingRecorder(model, counts=False, traces=True)
    with full:
        full.run(ids, torch.ones_like(mask))
    rows = torch.tensor([11, 2, 20])  # any order: one sample per selected row, in the given order
    picked = RoutingRecorder(model, counts=False, traces=True)
    with picked, picked.selecting(rows=rows), torch.no_grad():
        model(input_ids=ids, attention_mask=torch.ones_like(mask))
    assert torch.equal(picked.trace().indices, full.trace().indices[rows])


def test_kept_logits_carry_gradients_only_without_detach(load_tiny, padded_batch):
    model, _ = load_tiny("olmoe")
    ids, mask = padded_batch
    for detach in (True, False):
        recorder = RoutingRecorder(model, counts=False, traces=True, logits=True, detach=detach)
        with recorder, recorder.selecting(mask=mask):
            model(input_ids=ids, attention_mask=mask)
        assert recorder.trace().logits.requires_grad is (not detach)
    recorder.trace().logits.sum().backward()
    assert model.model.layers[0].mlp.gate.weight.grad is not None
    model.zero_grad(set_to_none=True)


def test_hooks_removed_after_exit_and_wrong_selection_is_reported(load_tiny, padded_batch):
    model, _ = load_tiny("olmoe")
    moe = inspect_moe(model)
    ids, mask = padded_batch
    recorder = RoutingRecorder(model)
    with pytest.raises(MoeguardError, match="token selection"), recorder, recorder.selecting(mask=torch.ones(2, 2)):
        model(input_ids=ids, attention_mask=mask)
    assert all(not r._forward_hooks for r in moe.routers.values())
    with pytest.raises(RuntimeError, match="context manager"):
        recorder.run(ids, mask)
