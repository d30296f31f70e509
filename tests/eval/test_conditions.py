"""Condition scoring and the counting-style judge."""

from __future__ import annotations

import pytest

from moeguard import SteeringSpec
from moeguard.eval.conditions import count_style, score_conditions, share_of_style


@pytest.mark.parametrize(
    "text, style",
    [
        ("1, 2, 3, 4, 5", "digits"),
        ("one, two, three", "words"),
        ("One, two, three, four.", "words"),
        ("1, two, 3", "mixed"),
        ("Sure, here you go", "other"),
        ("7", "other"),
        ("", "other"),
        ("someone two", "other"),
    ],
)
def test_count_style(text, style):
    assert count_style(text) == style


def test_share_of_style():
    judge = share_of_style("digits")
    assert judge(["1, 2, 3", "one, two", "4, 5", "x"]) == 0.5
    assert judge([]) == 0.0


def test_score_conditions_reports_mean_and_sd_over_control_seeds(load_tiny):
    model, tokenizer = load_tiny("olmoe")
    spec = SteeringSpec(deactivate=[(0, 0), (1, 0)])
    controls = [spec.random_like(model, seed) for seed in range(3)]
    calls = []

    def judge(texts):
        calls.append(list(texts))
        return len(calls) / 10  # differs per call so the sd is non-zero for the control

    scores, generations = score_conditions(
        model,
        tokenizer,
        {"a": ["Count to five.", "Hi"]},
        {"baseline": None, "control": controls},
        {"m": judge},
        max_new_tokens=4,
    )
    base, control = scores
    assert (base.condition, base.runs, base.sd, base.experts, base.n_prompts) == ("baseline", 1, 0.0, 0, 2)
    assert base.mean == pytest.approx(0.1)
    assert control.runs == 3 and control.experts == 2
    assert control.mean == pytest.approx(0.3) and control.sd == pytest.approx(0.1)
    assert len(calls) == 4 and all(len(c) == 2 for c in calls)
    assert control.cell() == "30.0 ± 10.0" and base.cell() == "10.0"
    assert set(generations) == {"baseline", "control"} and len(generations["control"]["a"]) == 2
