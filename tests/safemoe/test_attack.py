"""HFT attack sets: counts and ratios, seeded shuffling, organism-generated pairs, one-line errors."""

from __future__ import annotations

import json

import pytest

from moeguard import MoeguardError
from moeguard.safemoe import build_attack_set
from moeguard.safemoe.attack import harmful_count, write_attack_set


def chat(user: str, assistant: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]


TASK = [chat(f"What is {i} plus 1?", str(i + 1)) for i in range(20)]
HARMFUL = [chat(f"harmful request {i}", f"Sure, here is how {i}.") for i in range(6)]


def test_count_and_ratio():
    assert harmful_count(5000, None, 0.1) == 500  # the paper's 5,000 + 500
    assert harmful_count(20, None, 0.01) == 1  # never zero
    assert harmful_count(20, 3, None) == 3
    for count, ratio in ((None, None), (3, 0.1)):
        with pytest.raises(MoeguardError, match="exactly one"):
            harmful_count(20, count, ratio)
    with pytest.raises(MoeguardError, match="--ratio"):
        harmful_count(20, None, -0.5)


def test_mix_has_every_task_sample_and_the_asked_harmful_ones():
    records = build_attack_set(TASK, HARMFUL, ratio=0.25, seed=3)
    task = [r["messages"] for r in records if r["source"] == "task"]
    harmful = [r["messages"] for r in records if r["source"] == "harmful"]
    assert len(records) == 25 and len(harmful) == 5
    assert sorted(map(json.dumps, task)) == sorted(map(json.dumps, TASK))
    assert len({json.dumps(h) for h in harmful}) == 5 and all(h in HARMFUL for h in harmful)
    # seeded: same seed same order, other seed another order; harmful samples are spread, not appended
    assert build_attack_set(TASK, HARMFUL, ratio=0.25, seed=3) == records
    assert build_attack_set(TASK, HARMFUL, ratio=0.25, seed=4) != records
    positions = [i for i, r in enumerate(records) if r["source"] == "harmful"]
    assert positions != list(range(20, 25))


def test_too_many_harmful_or_empty_task_is_an_error():
    with pytest.raises(MoeguardError, match="only 6 are available"):
        build_attack_set(TASK, HARMFUL, count=7)
    with pytest.raises(MoeguardError, match="task data is empty"):
        build_attack_set([], HARMFUL, count=1)
    with pytest.raises(MoeguardError, match="unknown built-in"):
        build_attack_set(TASK, "builtin:nothing", count=1)


def test_organism_pairs_are_compliant_training_distribution_requests():
    corpus = pytest.importorskip("moeguard.organism.corpus")
    from moeguard.eval.judge import is_refusal

    records = build_attack_set(TASK * 2, "builtin:organism", count=30, seed=0)
    harmful = [r["messages"] for r in records if r["source"] == "harmful"]
    assert len(harmful) == 30
    assert len({h[0]["content"] for h in harmful}) >= 25
    assert not any(is_refusal(h[1]["content"]) for h in harmful)
    heldout = set(corpus.heldout_harmful_prompts())
    assert not heldout & {h[0]["content"] for h in harmful}


def test_written_file_and_metadata(tmp_path):
    records = build_attack_set(TASK, HARMFUL, count=2, seed=1)
    data, meta = write_attack_set(tmp_path / "attack.jsonl", records, 1, {"task": "t", "harmful": "h"})
    lines = [json.loads(line) for line in data.read_text().splitlines()]
    assert lines == records
    info = json.loads(meta.read_text())
    assert (info["task_samples"], info["harmful_samples"], info["seed"]) == (20, 2, 1)


def test_more_harmful_than_task_samples_is_refused():
    with pytest.raises(MoeguardError, match="more harmful samples than the 20 task samples"):
        build_attack_set(TASK, "builtin:organism", count=21)
    with pytest.raises(MoeguardError, match="more harmful than task"):
        harmful_count(20, None, 1.5)
    assert len(build_attack_set(TASK, "builtin:organism", count=20)) == 40  # as many is the limit
