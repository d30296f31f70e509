"""Acceptance: ``moeguard eval`` reproduces ``moeguard demo``'s refusal numbers on the organism (same prompts,
greedy, 40 new tokens, batches of 40, the hand-written harmful set judged by the organism judge, control seeds 0..4
via random_like)."""

from __future__ import annotations

import csv
import json

import pytest

from cli_helpers import run_cli


@pytest.mark.slow
def test_eval_reproduces_the_demo_refusal_table(tmp_path, capsys, one_torch_thread):
    from moeguard.demo import DemoSettings, run_demo
    from moeguard.organism.experiment import HARMFUL
    from moeguard.organism.handwritten import handwritten_prompts

    demo = tmp_path / "demo"
    run_demo(DemoSettings(output=demo), progress=False)
    with open(demo / "safety_table.csv", encoding="utf-8") as handle:
        table = {
            r["condition"]: r for r in csv.DictReader(handle) if r["prompt_set"] == HARMFUL and r["metric"] == "refusal"
        }

    out = tmp_path / "eval"
    result = run_cli(
        capsys,
        "eval",
        "builtin:organism",
        "--benchmark",
        "builtin:organism-handwritten",
        "--split",
        "harmful",
        "--judge",
        "organism",
        "--steer",
        demo / "unsafe_spec.json",
        "--control",
        "5",
        "--output",
        out,
    )
    assert result.code == 0, result.err
    rows = {
        r["condition"]: r for r in json.loads((out / "summary.json").read_text())["rows"] if r["metric"] == "refusal"
    }
    pairs = {"baseline": "baseline", "unsafe steering": "unsafe_spec", "random control": "random:unsafe_spec"}
    for demo_name, eval_name in pairs.items():
        demo_row, eval_row = table[demo_name], rows[eval_name]
        assert int(demo_row["prompts"]) == eval_row["n"] == len(handwritten_prompts("harmful"))
        assert int(demo_row["runs"]) == eval_row["seeds"]
        assert int(demo_row["experts_steered"]) == eval_row["experts"]
        assert demo_row["rate_percent"] == f"{100 * eval_row['value']:.1f}", demo_name
        assert demo_row["sd_percent"] == f"{100 * eval_row['sd']:.1f}", demo_name
    assert rows["random:unsafe_spec"]["seeds"] == 5
