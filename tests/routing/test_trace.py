"""RoutingTrace: counts by hand, sample selection, last rows, file round trip and foreign files."""

from __future__ import annotations

import pytest
import torch

from moeguard import MoeguardError
from moeguard.routing import RoutingTrace, hit_counts
from moeguard.routing.trace import trace_with_sequences


def small_trace() -> RoutingTrace:
    # 2 layers, 4 experts, top-2; samples of 2, 0 and 1 rows
    indices = torch.tensor([[[0, 1], [2, 3]], [[0, 2], [2, 1]], [[3, 1], [0, 2]]])
    return RoutingTrace(
        indices=indices,
        lengths=torch.tensor([2, 0, 1]),
        layers=[1, 3],
        num_experts=4,
        weights=torch.rand(3, 2, 2),
        logits=torch.randn(3, 2, 4),
        input_ids=torch.tensor([5, 6, 7]),
        positions=torch.tensor([0, 1, 0]),
        labels={"pair": torch.tensor([0, 0, 1]), "side": torch.tensor([0, 1, 0])},
        meta={"model": "m", "note": [1, 2]},
    )


def test_hit_counts_by_hand():
    counts = hit_counts(torch.tensor([[0, 1], [1, 3]]), 4)
    assert counts.tolist() == [[1, 2, 0, 1]]
    grouped = hit_counts(torch.tensor([[0, 1], [1, 3]]), 4, groups=torch.tensor([1, 0]), num_groups=2)
    assert grouped.tolist() == [[0, 1, 0, 1], [1, 1, 0, 0]]
    out = torch.zeros(4, dtype=torch.long)
    hit_counts(torch.tensor([[2, 2]]), 4, out=out)
    assert out.tolist() == [0, 0, 2, 0]


def test_counts_and_sample_counts_by_hand():
    trace = small_trace()
    assert trace.counts().tolist() == [[2, 2, 1, 1], [1, 1, 3, 1]]
    per_sample = trace.sample_counts()
    assert per_sample[0].tolist() == [[2, 1, 1, 0], [0, 1, 2, 1]]
    assert per_sample[1].sum() == 0
    assert per_sample[2].tolist() == [[0, 1, 0, 1], [1, 0, 1, 0]]


def test_select_samples_and_last_rows():
    trace = trace_with_sequences(small_trace(), [[5, 6], [9], [7]])
    picked = trace.select_samples([2, 0])
    assert picked.lengths.tolist() == [1, 2]
    assert torch.equal(picked.indices, trace.indices[[2, 0, 1]])
    assert picked.labels["pair"].tolist() == [1, 0] and picked.sequences == [[7], [5, 6]]
    with pytest.raises(MoeguardError, match="no recorded rows"):
        trace.last_rows()
    last = trace.select_samples([0, 2]).last_rows()
    assert torch.equal(last.indices, trace.indices[[1, 2]]) and last.lengths.tolist() == [1, 1]


def test_save_load_round_trip(tmp_path):
    trace = trace_with_sequences(small_trace(), [[5, 6], [9], [7]])
    path = trace.save(tmp_path / "routing.safetensors")
    back = RoutingTrace.load(tmp_path)  # a folder means its routing.safetensors
    for name in ("indices", "lengths", "weights", "logits", "input_ids", "positions", "tokens", "token_lengths"):
        assert torch.equal(getattr(back, name), getattr(trace, name)), name
    assert back.labels.keys() == trace.labels.keys() and back.meta == trace.meta
    assert back.layers == [1, 3] and back.num_experts == 4 and back.sequences == [[5, 6], [9], [7]]
    assert path.stat().st_size > 0


def test_foreign_and_missing_files_are_one_line(tmp_path):
    from safetensors.torch import save_file

    with pytest.raises(MoeguardError, match="does not exist"):
        RoutingTrace.load(tmp_path / "nope.safetensors")
    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(MoeguardError, match="not a moeguard routing trace"):
        RoutingTrace.load(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(MoeguardError, match="not a readable"):
        RoutingTrace.load(tmp_path / "junk.safetensors")
    newer = small_trace()
    newer.save(tmp_path / "v.safetensors")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "v.safetensors"), framework="pt") as handle:
        meta = dict(handle.metadata())
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    meta["version"] = "99"
    save_file(tensors, str(tmp_path / "v.safetensors"), metadata=meta)
    with pytest.raises(MoeguardError, match="version 99"):
        RoutingTrace.load(tmp_path / "v.safetensors")


def test_inconsistent_shapes_are_rejected():
    with pytest.raises(MoeguardError, match="lengths sum"):
        RoutingTrace(
            indices=torch.zeros(3, 2, 2, dtype=torch.long), lengths=torch.tensor([1]), layers=[0, 1], num_experts=4
        )
    with pytest.raises(MoeguardError, match="layers"):
        RoutingTrace(
            indices=torch.zeros(3, 2, 2, dtype=torch.long), lengths=torch.tensor([3]), layers=[0], num_experts=4
        )
