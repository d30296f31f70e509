"""Routing capture: streaming counts agree with full traces, pads are never counted."""

from __future__ import annotations

import pytest
import torch

from moeguard import MoeguardError, RoutingRecorder, inspect_moe
from moeguard.capture import counts_from_samples


@pytest.mark.parametrize("family", ["olmoe", "qwen2_moe", "deepseek_v3", "phimoe"])
def test_streaming_counts_equal_counts_from_traces(family, load_tiny, padded_batch):
    model, _ = load_tiny(family)
    moe = inspect_moe(model)
    ids, mask = padded_batch
    recorder = RoutingRecorder(model, counts=True, traces=True, probs=True, logits=True)
    with recorder:
        recorder.run(ids, mask)
        recorder.run(ids[:2, :5], mask[:2, :5])
    samples = recorder.samples()
    assert [s["indices"].shape[1] for s in samples] == [9, 6, 4, 5, 5]
    assert recorder.tokens == int(mask.sum()) + 10
    assert torch.equal(recorder.counts, counts_from_samples(samples, moe.num_experts))
    assert recorder.counts.sum() == recorder.tokens * moe.top_k * len(moe.layers)
    first = samples[0]
    assert first["probs"].shape == (len(moe.layers), 9, moe.num_experts)
    assert first["logits"].shape == first["probs"].shape
    # the recorded weights are the router's own top-k weights at the recorded indices
    assert first["weights"].shape == first["indices"].shape


def test_pad_tokens_are_never_counted(load_tiny, padded_batch):
    model, _ = load_tiny("olmoe")
    ids, mask = padded_batch
    recorder = RoutingRecorder(model)
    with recorder:
        recorder.run(ids, mask)
    padded_counts, padded_tokens = recorder.counts.clone(), recorder.tokens
    # the same rows one by one, unpadded: the counts must be identical
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


def test_count_mask_restricts_counted_tokens(load_tiny, padded_batch):
    model, _ = load_tiny("olmoe")
    ids, mask = padded_batch
    only_last_two = torch.zeros_like(mask)
    only_last_two[:, 2:4] = 1
    recorder = RoutingRecorder(model, traces=True)
    with recorder:
        recorder.run(ids, mask, count_mask=only_last_two)
    assert recorder.tokens == 6
    assert [s["indices"].shape[1] for s in recorder.samples()] == [2, 2, 2]


def test_hooks_removed_after_exit_and_wrong_mask_is_reported(load_tiny, padded_batch):
    model, _ = load_tiny("olmoe")
    moe = inspect_moe(model)
    ids, mask = padded_batch
    recorder = RoutingRecorder(model)
    with pytest.raises(MoeguardError, match="token mask"), recorder:
        recorder.token_mask = torch.ones(2, 2, dtype=torch.bool)
        model(input_ids=ids, attention_mask=mask)
    assert all(not r._forward_hooks for r in moe.routers.values())
    with pytest.raises(RuntimeError, match="context manager"):
        recorder.run(ids, mask)
