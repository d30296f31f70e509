"""Steering forces experts on/off, changes outputs, and leaves no trace after the context."""

from __future__ import annotations

import json

import pytest
import torch

from moeguard import MoeguardError, RoutingRecorder, SteeringSpec, inspect_moe
from moeguard.adapters.base import RoutingAdapter
from moeguard.routing import ExpertEdit
from moeguard.testing import TINY_FAMILIES


class _Routing:
    """Per-layer routing ``indices[position]`` = ``[tokens, k]`` of one recorded forward call."""

    def __init__(self, trace):
        self.indices = trace.indices.transpose(0, 1)


def _routing(model, ids, mask):
    recorder = RoutingRecorder(model, counts=False, traces=True)
    with recorder:
        recorder.run(ids, mask)
    return _Routing(recorder.trace())


def _most_and_least_used(model, ids, mask, layer):
    moe = inspect_moe(model)
    trace = _routing(model, ids, mask)
    counts = torch.bincount(trace.indices[moe.layer_position(layer)].reshape(-1), minlength=moe.num_experts)
    return int(counts.argmax()), int(counts.argmin())


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_deactivate_removes_and_activate_adds_expert_everywhere(family, load_tiny, padded_batch):
    model, _ = load_tiny(family)
    moe = inspect_moe(model)
    ids, mask = padded_batch
    layer = moe.layers[-1]
    busiest, rarest = _most_and_least_used(model, ids, mask, layer)
    position = moe.layer_position(layer)
    before = _routing(model, ids, mask)
    assert (before.indices[position] == busiest).any()

    with SteeringSpec(deactivate=[(layer, busiest)]).apply(model):
        off = _routing(model, ids, mask)
    assert not (off.indices[position] == busiest).any(), "deactivated expert still selected"

    with SteeringSpec(activate=[(layer, rarest)]).apply(model):
        on = _routing(model, ids, mask)
    assert (on.indices[position] == rarest).any(dim=-1).all(), "activated expert missing from some token's top-k"

    # earlier layers are untouched (the steered layer is the last one)
    for other in moe.layers[:-1]:
        p = moe.layer_position(other)
        assert torch.equal(on.indices[p], before.indices[p])


@pytest.mark.parametrize("family", ["olmoe", "deepseek_v3", "gpt_oss"])
def test_steering_changes_logits_and_is_fully_undone(family, load_tiny, padded_batch):
    model, _ = load_tiny(family)
    moe = inspect_moe(model)
    ids, mask = padded_batch
    with torch.no_grad():
        plain = model(input_ids=ids, attention_mask=mask).logits
    spec = SteeringSpec(activate=[(layer, 3) for layer in moe.layers], deactivate=[(moe.layers[0], 5)])
    with spec.apply(model), torch.no_grad():
        steered = model(input_ids=ids, attention_mask=mask).logits
    assert not torch.allclose(plain, steered)
    with torch.no_grad():
        after = model(input_ids=ids, attention_mask=mask).logits
    assert torch.equal(plain, after)

    with pytest.raises(RuntimeError, match="boom"), spec.apply(model):
        raise RuntimeError("boom")
    with torch.no_grad():
        after_error = model(input_ids=ids, attention_mask=mask).logits
    assert torch.equal(plain, after_error)
    assert all(not r._forward_hooks for r in moe.routers.values())


def test_generate_with_kv_cache_is_steered_and_restored(load_tiny):
    model, tokenizer = load_tiny("olmoe")
    moe = inspect_moe(model)
    ids = torch.tensor([[5, 17, 42, 99, 7]])
    kwargs = dict(
        max_new_tokens=12,
        do_sample=False,
        use_cache=True,
        pad_token_id=0,
        return_dict_in_generate=True,
        output_scores=True,
    )
    with torch.no_grad():
        plain = model.generate(ids, **kwargs)
        spec = SteeringSpec(deactivate=[(layer, e) for layer in moe.layers for e in range(5)])
        with spec.apply(model):
            steered = model.generate(ids, **kwargs)
            recorder = RoutingRecorder(model, counts=True)
            with recorder:
                model.generate(ids, **kwargs)
        again = model.generate(ids, **kwargs)
    scores = lambda out: torch.stack(out.scores)  # noqa: E731  (random tiny model: compare logits)
    assert not torch.allclose(scores(plain), scores(steered))
    assert torch.equal(plain.sequences, again.sequences) and torch.equal(scores(plain), scores(again))
    # every decoding step (KV cache on) only used experts 5..7
    assert recorder.counts[:, :5].sum() == 0 and recorder.counts.sum() > 0


def test_soft_mode_nudges_without_forcing(load_tiny, padded_batch):
    model, _ = load_tiny("olmoe")
    ids, mask = padded_batch
    layer = 1
    busiest, rarest = _most_and_least_used(model, ids, mask, layer)
    base = _routing(model, ids, mask).indices[1]
    with SteeringSpec(activate=[(layer, rarest)], mode="soft", alpha=0.05).apply(model):
        tiny_nudge = _routing(model, ids, mask).indices[1]
    with SteeringSpec(activate=[(layer, rarest)], mode="soft", alpha=50.0).apply(model):
        big_nudge = _routing(model, ids, mask).indices[1]
    hits = lambda idx: int((idx == rarest).any(-1).sum())  # noqa: E731
    assert hits(base) <= hits(tiny_nudge) < idx_total(base)
    assert hits(big_nudge) == idx_total(base)


def idx_total(indices: torch.Tensor) -> int:
    return indices.shape[0]  # tokens ([tokens, k])


def test_steermoe_edit_matches_hand_computed_case():
    class Toy(RoutingAdapter):
        def route(self, router, logits, hidden, extra=()):
            probs = torch.softmax(logits, dim=-1)
            w, i = probs.topk(2, dim=-1)
            return w, i

    router = torch.nn.Module()
    router.top_k, router.num_experts = 2, 4
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    act = torch.tensor([False, False, False, True])
    deact = torch.tensor([True, False, False, False])
    weights, indices = Toy().edited_route(router, logits, logits, ExpertEdit(act, deact))
    r = torch.log_softmax(logits, -1)[0]
    edited = torch.tensor([r.min() - 0.01, r[1], r[2], r.max() + 0.01])
    expected = torch.softmax(edited, -1)
    assert indices.tolist() == [[3, 1]]
    assert torch.allclose(weights[0], expected[[3, 1]])


@pytest.mark.parametrize(
    "spec, message",
    [
        (SteeringSpec(activate=[(7, 0)]), "out of range"),
        (SteeringSpec(activate=[(0, 8)]), "expert 8"),
        (SteeringSpec(activate=[(0, 0), (0, 1), (0, 2)]), "top_k=2"),
        (SteeringSpec(deactivate=[(0, e) for e in range(7)]), "fewer"),
    ],
)
def test_validation_errors_are_one_line(spec, message, load_tiny):
    model, _ = load_tiny("olmoe")
    with pytest.raises(MoeguardError, match=message) as err:
        spec.patch(model)
    assert "\n" not in str(err.value)
    assert all(not r._forward_hooks for r in inspect_moe(model).routers.values())


def test_dense_layer_is_rejected(load_tiny):
    model, _ = load_tiny("deepseek_v3")
    with pytest.raises(MoeguardError, match="has no router"):
        SteeringSpec(activate=[(0, 1)]).patch(model)


def test_deepseek_group_limit_is_checked(load_tiny):
    model, _ = load_tiny("deepseek_v3")  # 4 groups of 2 experts, topk_group=2, top_k=2
    moe = inspect_moe(model)
    SteeringSpec(activate=[(1, 0), (1, 2)]).validate(moe)  # two groups: allowed
    moe.routers[1].topk_group = 1
    try:
        with pytest.raises(MoeguardError, match="groups"):
            SteeringSpec(activate=[(1, 0), (1, 2)]).validate(moe)
    finally:
        moe.routers[1].topk_group = 2


def test_spec_json_round_trip_and_malformed(tmp_path):
    spec = SteeringSpec(activate=[(1, 2)], deactivate=[(0, 3), (2, 4)], model="m")
    path = spec.save(tmp_path / "spec.json")
    assert json.loads(path.read_text()) == {
        "activate": [[1, 2]],
        "deactivate": [[0, 3], [2, 4]],
        "mode": "steermoe",
        "model": "m",
    }
    assert SteeringSpec.load(path) == spec
    soft = SteeringSpec(activate=[(1, 2)], mode="soft", alpha=2.5)
    assert SteeringSpec.load(soft.save(tmp_path / "soft.json")) == soft

    bad = tmp_path / "bad.json"
    for text, message in [
        ("{not json", "not valid JSON"),
        ('{"activate": [[1]]}', "pair"),
        ('{"activate": [["a", 1]]}', "pair"),
        ('{"activate": 3}', "list"),
        ('{"activate": [], "mode": "x"}', "mode"),
        ('{"activate": [[0, 1]], "deactivate": [[0, 1]]}', "both"),
        ('{"actvate": []}', "unknown field"),
        ("[1, 2]", "JSON object"),
    ]:
        bad.write_text(text)
        with pytest.raises(MoeguardError, match=message):
            SteeringSpec.load(bad)
    with pytest.raises(MoeguardError, match="does not exist"):
        SteeringSpec.load(tmp_path / "missing.json")


def test_random_control_keeps_per_layer_counts_and_varies_with_seed(load_tiny):
    model, _ = load_tiny("olmoe")
    spec = SteeringSpec(activate=[(0, 1), (2, 3), (2, 4)], deactivate=[(0, 5), (1, 0), (1, 2), (1, 7)])
    controls = [spec.random_like(model, seed) for seed in range(6)]
    for control in controls:
        assert {k: (len(a), len(d)) for k, (a, d) in control.by_layer().items()} == {0: (1, 1), 1: (0, 3), 2: (2, 0)}
        control.validate(inspect_moe(model))
    assert len({tuple(c.activate + c.deactivate) for c in controls}) > 1
    assert spec.random_like(model, 3) == spec.random_like(model, 3)
