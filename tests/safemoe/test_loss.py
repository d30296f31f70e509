"""The SafeMoE routing loss against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from moeguard import MoeguardError
from moeguard.safemoe import routing_kl, routing_kl_per_layer

LN3 = math.log(3.0)
# Row of the hand computation: reference logits [0, 0] -> p = (1/2, 1/2); current logits [0, T*ln 3]
# -> softmax(cur / T) = (1/4, 3/4). KL(p || q) = 1/2 ln(1/2 / 1/4) + 1/2 ln(1/2 / 3/4) = 1/2 ln(4/3).
HAND_KL = 0.5 * math.log(4.0 / 3.0)


def test_identical_logits_give_zero_loss():
    torch.manual_seed(0)
    logits = torch.randn(5, 3, 8) * 4
    assert routing_kl(logits, logits.clone()).item() == pytest.approx(0.0, abs=1e-6)
    assert torch.allclose(routing_kl_per_layer(logits, logits.clone()), torch.zeros(3), atol=1e-6)


def test_two_experts_one_layer_by_hand():
    reference = torch.tensor([[[0.0, 0.0]]])
    current = torch.tensor([[[0.0, 0.1 * LN3]]])
    assert routing_kl(reference, current, temperature=0.1).item() == pytest.approx(HAND_KL, rel=1e-5)
    # the same pair at T = 1 with the unscaled logits
    assert routing_kl(reference, torch.tensor([[[0.0, LN3]]]), temperature=1.0).item() == pytest.approx(
        HAND_KL, rel=1e-5
    )


def test_mean_over_rows_sum_over_layers():
    # row 0: layer 0 = hand pair, layer 1 = identical; row 1: both layers the hand pair
    reference = torch.zeros(2, 2, 2)
    current = torch.zeros(2, 2, 2)
    current[0, 0, 1] = 0.1 * LN3
    current[1, :, 1] = 0.1 * LN3
    per_layer = routing_kl_per_layer(reference, current, temperature=0.1)
    assert per_layer.tolist() == pytest.approx([HAND_KL, HAND_KL / 2], rel=1e-5)
    # mean over rows of sum over layers: (HAND + 2 HAND) / 2
    assert routing_kl(reference, current, 0.1).item() == pytest.approx(1.5 * HAND_KL, rel=1e-5)


def test_kl_direction_is_reference_to_current():
    reference = torch.tensor([[[0.0, LN3]]])  # p = (1/4, 3/4)
    current = torch.tensor([[[0.0, 0.0]]])  # q = (1/2, 1/2)
    # KL(p || q) = 1/4 ln(1/2) + 3/4 ln(3/2), not the 1/2 ln(4/3) of the reverse direction
    expected = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert routing_kl(reference, current, temperature=1.0).item() == pytest.approx(expected, rel=1e-5)


def test_gradient_flows_only_through_current():
    reference = torch.tensor([[[0.0, 0.0]]], requires_grad=True)
    current = torch.tensor([[[0.0, 0.1 * LN3]]], requires_grad=True)
    routing_kl(reference, current, temperature=0.1).backward()
    assert reference.grad is None
    # d KL / d current = (softmax(cur/T) - softmax(ref/T)) / T = ((1/4, 3/4) - (1/2, 1/2)) / 0.1
    assert current.grad.flatten().tolist() == pytest.approx([-2.5, 2.5], rel=1e-4)


def test_bad_shapes_empty_and_temperature_are_errors():
    with pytest.raises(MoeguardError, match="does not match"):
        routing_kl(torch.zeros(2, 3, 8), torch.zeros(2, 3, 4))
    with pytest.raises(MoeguardError, match="rows, layers, experts"):
        routing_kl(torch.zeros(3, 8), torch.zeros(3, 8))
    with pytest.raises(MoeguardError, match="empty"):
        routing_kl(torch.zeros(0, 3, 8), torch.zeros(0, 3, 8))
    with pytest.raises(MoeguardError, match="temperature"):
        routing_kl(torch.zeros(1, 1, 2), torch.zeros(1, 1, 2), temperature=0.0)
