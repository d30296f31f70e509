"""DeepSeek-V3 group-limited routing under SteerMoE edits, against hand-computed cases and the invariant
that deactivation removes only the deactivated expert."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from moeguard import RoutingRecorder, SteeringSpec, inspect_moe
from moeguard.adapters.sigmoid_group import DeepseekV3Adapter
from moeguard.routing import ExpertEdit

# 8 experts in 4 groups of 2: g0 = {0, 1}, g1 = {2, 3}, g2 = {4, 5}, g3 = {6, 7}
LOGITS = torch.tensor([[3.0, 2.9, 0.0, 0.0, 1.0, 0.5, -1.0, -2.0]])


def router(topk_group: int = 2) -> nn.Module:
    module = nn.Module()
    module.top_k, module.num_experts, module.num_group, module.topk_group = 2, 8, 4, topk_group
    module.norm_topk_prob, module.routed_scaling_factor = True, 1.0
    module.e_score_correction_bias = torch.zeros(8)
    return module


def edit(activate=(), deactivate=()) -> ExpertEdit:
    return ExpertEdit.from_experts(8, activate, deactivate)


def normalised(*values: float) -> list[float]:
    s = torch.tensor(values).sigmoid()
    return (s / (s.sum() + 1e-20)).tolist()


def test_unedited_rule_by_hand():
    # group scores: g0 = s(3)+s(2.9), g2 = s(1)+s(0.5) are the two best -> experts 0 and 1
    weights, indices = DeepseekV3Adapter().route(router(), LOGITS, None)
    assert sorted(indices[0].tolist()) == [0, 1]


def test_deactivating_an_expert_keeps_its_group_and_its_partner():
    """Regression: the old edit subtracted a large constant before group scores, so expert 0's group was
    never chosen and its partner (expert 1) vanished too (the buggy result was experts 4 and 5)."""
    weights, indices = DeepseekV3Adapter().edited_route(router(), LOGITS, None, edit(deactivate=[0]))
    order = indices[0].tolist()
    assert sorted(order) == [1, 4]  # groups g0, g2 still chosen by the model's own scores; 0 removed
    expected = dict(zip([1, 4], normalised(2.9, 1.0), strict=True))
    assert weights[0].tolist() == pytest.approx([expected[i] for i in order])


def test_deactivation_that_empties_the_kept_groups_adds_the_next_best_group():
    # topk_group=1 keeps only g0; with both of its experts off, the next-best group g2 must be added
    _, indices = DeepseekV3Adapter().edited_route(router(topk_group=1), LOGITS, None, edit(deactivate=[0, 1]))
    assert sorted(indices[0].tolist()) == [4, 5]


def test_activation_forces_the_group_and_the_expert_with_the_max_margin_weight():
    weights, indices = DeepseekV3Adapter().edited_route(router(), LOGITS, None, edit(activate=[6]))
    order = indices[0].tolist()
    assert sorted(order) == [0, 6]
    expected = dict(zip([0, 6], normalised(3.0, 3.0 + 0.01), strict=True))
    assert weights[0].tolist() == pytest.approx([expected[i] for i in order])


@pytest.mark.parametrize("family", ["deepseek_v3", "glm4_moe"])
def test_deactivation_removes_only_that_expert_on_a_real_model(family, load_tiny, padded_batch):
    model, _ = load_tiny(family)
    moe = inspect_moe(model)
    ids, mask = padded_batch
    layer = moe.layers[-1]
    position = moe.layer_position(layer)

    def routing():
        recorder = RoutingRecorder(model, counts=False, traces=True)
        with recorder:
            recorder.run(ids, mask)
        return recorder.trace().indices[:, position]

    before = routing()
    for expert in range(moe.num_experts):
        with SteeringSpec(deactivate=[(layer, expert)]).apply(model):
            after = routing()
        assert not (after == expert).any()
        for token in range(before.shape[0]):
            kept = set(before[token].tolist()) - {expert}
            assert kept <= set(after[token].tolist()), (family, expert, token)


def test_per_token_edits_equal_one_edit_per_row():
    """Per-token masks ``[N, E]`` (the vLLM backend's per-request edits) route each row as its own edit,
    including a row whose deactivation leaves the kept groups short, next to unedited rows."""
    torch.manual_seed(5)
    logits = torch.randn(4, 8) * 2
    rows = [edit(activate=[7]), edit(deactivate=[0, 1, 2, 3, 5]), edit(deactivate=[4]), ExpertEdit()]
    masks = [
        torch.stack([r.activate if r.activate is not None else torch.zeros(8, dtype=torch.bool) for r in rows]),
        torch.stack([r.deactivate if r.deactivate is not None else torch.zeros(8, dtype=torch.bool) for r in rows]),
    ]
    per_token = ExpertEdit(masks[0], masks[1], drop_empty=False)
    weights, indices = DeepseekV3Adapter().edited_route(router(), logits, None, per_token)
    for i, row_edit in enumerate(rows):
        want_w, want_i = (
            DeepseekV3Adapter().edited_route(router(), logits[i : i + 1], None, row_edit)
            if not row_edit.is_empty
            else DeepseekV3Adapter().route(router(), logits[i : i + 1], None)
        )
        assert sorted(indices[i].tolist()) == sorted(want_i[0].tolist())
        assert torch.allclose(weights[i].sort().values, want_w[0].sort().values)
