"""SteerMoE steering on every supported type, read from what the experts consume: a deactivated expert is
absent from every token (and only it: every other expert a token had stays), an activated one is in every
token's top-k, and the outputs are bit-identical after the steering context exits — in float32 and bfloat16.
Types where exact steering is impossible refuse it with a one-line error."""

from __future__ import annotations

import pytest
import torch
from routing_helpers import experts_inputs, kind_of

from moeguard import MoeguardError, RoutingRecorder, SteeringSpec, inspect_moe
from moeguard.testing import TINY_TYPES

#: Capture-only types (steering refused, see their adapter modules).
REFUSED = {"doge"}
STEERABLE = [t for t in TINY_TYPES if t not in REFUSED]


def run(model, ids, mask):
    """``(logits, {layer: bool [tokens, experts] of the experts each token's experts module used})``."""
    moe = inspect_moe(model)
    seen, handles = experts_inputs(model)
    try:
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits
    finally:
        for handle in handles:
            handle.remove()
    selected = {}
    for layer, got in seen.items():
        if kind_of(model.config.model_type) == "dense":
            selected[layer] = got.selected
        else:
            selected[layer] = torch.zeros(got.indices.shape[0], moe.num_experts, dtype=torch.bool).scatter_(
                1, got.indices, True
            )
    return logits, selected


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("model_type", STEERABLE)
def test_steering_forces_experts_on_and_off_and_leaves_no_trace(model_type, dtype, reloaded, padded_batch):
    model = reloaded(model_type, dtype)
    moe = inspect_moe(model)
    ids, mask = padded_batch
    layer = moe.layers[-1]
    plain_logits, plain = run(model, ids, mask)
    uses = plain[layer].sum(0)
    busiest, rarest = int(uses.argmax()), int(uses.argmin())
    assert uses[busiest] > 0 and busiest != rarest

    with SteeringSpec(deactivate=[(layer, busiest)]).apply(model):
        off_logits, off = run(model, ids, mask)
    assert not off[layer][:, busiest].any(), "deactivated expert still consumed"
    kept = plain[layer].clone()
    kept[:, busiest] = False
    assert not (kept & ~off[layer]).any(), "deactivation removed other experts too"
    assert not torch.equal(off_logits, plain_logits)

    with SteeringSpec(activate=[(layer, rarest)]).apply(model):
        _, on = run(model, ids, mask)
    assert on[layer][:, rarest].all(), "activated expert missing from some token's top-k"
    for other in moe.layers[:-1]:  # earlier layers are untouched
        assert torch.equal(on[other], plain[other])

    after_logits, after = run(model, ids, mask)
    assert torch.equal(after_logits, plain_logits) and all(torch.equal(after[i], plain[i]) for i in plain)
    assert all(not r._forward_hooks for r in moe.routers.values())


def test_doge_refuses_steering_with_one_line(reloaded):
    model = reloaded("doge")
    moe = inspect_moe(model)
    with pytest.raises(MoeguardError, match="product keys") as err:
        SteeringSpec(activate=[(moe.layers[0], 1)]).patch(model)
    assert "\n" not in str(err.value)
    assert all(not r._forward_hooks for r in moe.routers.values())


def test_deepseek_v4_hash_layers_refuse_steering_and_learned_layers_steer(reloaded):
    model = reloaded("deepseek_v4")
    moe = inspect_moe(model)
    hash_layers = [i for i in moe.layers if type(moe.routers[i]).__name__ == "DeepseekV4HashRouter"]
    assert hash_layers == [0] and moe.layers == [0, 1, 2]
    with pytest.raises(MoeguardError, match="hash layer") as err:
        SteeringSpec(deactivate=[(0, 1)]).patch(model)
    assert str(err.value).startswith("layer 0: ") and "\n" not in str(err.value)
    SteeringSpec(deactivate=[(1, 1)]).validate(moe)  # learned layers steer (tested above)


def test_zaya_skip_class_is_expert_e(reloaded, padded_batch):
    """ZAYA's skip class is expert E: forcing it makes every token skip (the experts see index 0 with weight
    0), and the recorder counts it in column E, never as expert 0."""
    model = reloaded("zaya")
    moe = inspect_moe(model)
    skip, layer = moe.num_experts - 1, moe.layers[-1]
    assert skip == model.config.num_experts
    ids, mask = padded_batch
    with SteeringSpec(activate=[(layer, skip)]).apply(model):
        _, skipped = run(model, ids, mask)
        recorder = RoutingRecorder(model)
        with recorder:
            recorder.run(ids, mask)
    assert skipped[layer][:, skip].all()
    row = recorder.counts[moe.layer_position(layer)]
    assert row[skip] == int(mask.sum()) and row[:skip].sum() == 0


def test_longcat_zero_experts_are_counted_and_steerable(reloaded, padded_batch):
    model = reloaded("longcat_flash")
    moe = inspect_moe(model)
    assert moe.num_experts == model.config.n_routed_experts + model.config.zero_expert_num
    zero = moe.num_experts - 1
    with SteeringSpec(activate=[(moe.layers[-1], zero)]).apply(model):
        _, on = run(model, *padded_batch)
    assert on[moe.layers[-1]][:, zero].all()
