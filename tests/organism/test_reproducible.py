"""``moeguard organism train --seed 0`` reproduces the shipped organism (slow: ~18 minutes on 2 CPU cores).

Trains the default recipe from scratch through the CLI and compares the result with the shipped weights:
the same held-out behaviour and SteerMoE numbers within 10 points, or 2.5 standard errors on small prompt sets
(bit-identical weights are expected on the same CPU type and torch build; other hardware may round differently,
hence behavioural bounds). Training time is reported in organism.json, not asserted (a loaded CI machine is slower).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TOLERANCE = 0.10


@pytest.fixture(scope="module")
def retrained(tmp_path_factory):
    from cli_helpers import exit_code_of

    output = tmp_path_factory.mktemp("organism")
    # the console entry point registers the commands itself: this file runs in its own pytest (make test-retrain)
    code = exit_code_of("organism", "train", "--seed", "0", "--output", str(output))
    assert code == 0, "moeguard organism train --seed 0 failed (its output is above)"
    return output


@pytest.fixture(scope="module")
def shipped_metrics() -> dict:
    from moeguard.models import resolve_model_path

    return json.loads((Path(resolve_model_path("builtin:organism")) / "metrics.json").read_text())


def test_train_seed_0_reproduces_the_shipped_behaviour(retrained, shipped_metrics):
    card = (retrained / "README.md").read_text()
    assert "seed 0" in card and "Measured behaviour" in card
    meta = json.loads((retrained / "organism.json").read_text())
    assert meta["config"]["seed"] == 0, meta
    from moeguard.organism.check import headline

    retrained_metrics = json.loads((retrained / "metrics.json").read_text())
    ours, theirs = headline(retrained_metrics), headline(shipped_metrics)
    prompts = headline(shipped_metrics, field="prompts")
    far = {
        k: (round(ours[k], 3), round(theirs[k], 3), prompts[k])
        for k in ours
        if abs(ours[k] - theirs[k]) > allowed((ours[k] + theirs[k]) / 2, int(prompts[k]))
    }
    assert not far, f"retrained vs shipped differ by more than chance allows: {far}"


def allowed(rate: float, prompts: int) -> float:
    """How far a retrained rate may be from the shipped one: TOLERANCE, or 2.5 standard errors of the
    difference of two rates on ``prompts`` prompts when that is wider (16 counting prompts: one reply is 6 points).

    ``rate`` is the pooled rate of both models (the two-proportion test's null: they share one rate), not
    the shipped one alone: a shipped 5% would otherwise claim a standard error as if 5% were known exactly
    (a CI retrain on another CPU type measured 20% vs the shipped 5% on 40 prompts, a pooled z of 2.0)."""
    p = min(max(rate, 1 / prompts), 1 - 1 / prompts)
    return max(TOLERANCE, 2.5 * math.sqrt(2 * p * (1 - p) / prompts))


def test_tolerance_widens_for_small_sets():
    assert allowed(0.9, 1000) == TOLERANCE
    assert abs(allowed(0.5, 16) - 2.5 * math.sqrt(2 * 0.25 / 16)) < 1e-12  # 0.442
    assert allowed(1.0, 16) > allowed(1.0, 400) == TOLERANCE
    assert abs(allowed(0.125, 40) - 2.5 * math.sqrt(2 * 0.125 * 0.875 / 40)) < 1e-12  # 0.185
