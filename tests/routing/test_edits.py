"""Expert edits: SteerMoE's score edit by hand, composition order, device moves."""

from __future__ import annotations

import torch

from moeguard.routing import STEER_MARGIN, ExpertEdit, combine, edit_scores


def test_edit_scores_by_hand():
    scores = torch.tensor([[0.5, -1.0, 2.0, 0.0], [1.0, 1.0, -3.0, 0.25]])
    edited = edit_scores(scores, ExpertEdit.from_experts(4, activate=[3], deactivate=[2]))
    # per token: activated -> max + 0.01, deactivated -> min - 0.01 (bounds of the unedited scores)
    expected = torch.tensor(
        [[0.5, -1.0, -1.0 - STEER_MARGIN, 2.0 + STEER_MARGIN], [1.0, 1.0, -3.0 - STEER_MARGIN, 1.0 + STEER_MARGIN]]
    )
    assert torch.equal(edited, expected)


def test_soft_edit_shifts_by_alpha():
    scores = torch.zeros(1, 3)
    edited = edit_scores(scores, ExpertEdit.from_experts(3, activate=[0], deactivate=[2], alpha=1.5))
    assert edited.tolist() == [[1.5, 0.0, -1.5]]


def test_per_token_masks():
    scores = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    mask = torch.tensor([[True, False], [False, False]])
    edited = edit_scores(scores, ExpertEdit(activate=mask))
    assert torch.equal(edited, torch.tensor([[1.0 + STEER_MARGIN, 1.0], [1.0, 0.0]]))


def test_combine_later_edit_wins_and_shifts_add():
    first = ExpertEdit.from_experts(4, activate=[0, 1], deactivate=[3])
    second = ExpertEdit.from_experts(4, activate=[3], deactivate=[1])
    both = combine([first, second])
    assert both.activate.tolist() == [True, False, False, True]
    assert both.deactivate.tolist() == [False, True, False, False]
    soft = combine([ExpertEdit.from_experts(2, [0], alpha=1.0), ExpertEdit.from_experts(2, [0], alpha=2.0)])
    assert soft.shift.tolist() == [3.0, 0.0] and not soft.is_hard


def test_empty_masks_are_no_edit_and_device_copies_are_cached():
    assert ExpertEdit(activate=torch.zeros(4, dtype=torch.bool)).is_empty
    edit = ExpertEdit.from_experts(4, activate=[1])
    assert edit.to(torch.device("cpu")) is edit
    meta = edit.to(torch.device("meta"))
    assert meta.activate.device.type == "meta" and edit.to(torch.device("meta")) is meta
