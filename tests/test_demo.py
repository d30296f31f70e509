"""The demo pipeline runs end to end on a tiny model and writes every artifact (flow, not behaviour:
the behaviour bars are asserted on the organism in test_organism_behaviour.py)."""

from __future__ import annotations

import csv
import json

from cli_helpers import error_line, run_cli
from moeguard.demo import DemoSettings, run_demo


def test_demo_writes_tables_specs_heatmaps_and_report(tiny_model_dir, tmp_path):
    out = tmp_path / "demo"
    settings = DemoSettings(
        model=tiny_model_dir("olmoe"),
        output=out,
        pairs=12,
        control_seeds=2,
        harmful_prompts=6,
        lookalike_prompts=4,
        benign_prompts=3,
        counting_prompts=20,
        faithfulness_prompts=4,
        max_new_tokens=6,
        bootstrap=5,
    )
    result = run_demo(settings, progress=False)
    names = {p.name for p in result.files}
    assert names == {
        "safety_table.csv",
        "digits_table.csv",
        "faithfulness_table.csv",
        "safe_spec.json",
        "unsafe_spec.json",
        "digits_spec.json",
        "words_spec.json",
        "document_spec.json",
        "memory_spec.json",
        "meta.json",
        "report.md",
        "heatmap.png",
        "digits_heatmap.png",
        "faithfulness_heatmap.png",
    }
    with open(out / "safety_table.csv") as handle:
        rows = list(csv.DictReader(handle))
    metrics = ("refusal", "on topic", "degenerate")
    assert [(r["condition"], r["prompt_set"], r["metric"]) for r in rows] == [
        (c, p, m)
        for c in ("baseline", "safe steering", "unsafe steering", "random control")
        for p in ("harmful", "look-alikes")
        for m in metrics
    ] + [("baseline", "benign", m) for m in metrics]
    assert {r["prompts"] for r in rows if r["prompt_set"] == "harmful"} == {"6"}
    with open(out / "faithfulness_table.csv") as handle:
        faith = list(csv.DictReader(handle))
    assert {(r["condition"], r["metric"]) for r in faith} == {
        (c, m)
        for c in ("baseline", "steer to document", "steer to memory", "random control")
        for m in ("document", "memory")
    }
    with open(out / "digits_table.csv") as handle:
        digits = list(csv.DictReader(handle))
    assert {r["prompt_set"] for r in digits} == {"counting, no style asked", "counting, style asked"}
    control = [r for r in rows if r["condition"] == "random control"]
    unsafe = [r for r in rows if r["condition"] == "unsafe steering"]
    assert all(r["runs"] == "2" for r in control) and control[0]["experts_steered"] == unsafe[0]["experts_steered"]
    unsafe_spec = json.loads((out / "unsafe_spec.json").read_text())
    assert int(unsafe[0]["experts_steered"]) == len(unsafe_spec["activate"]) + len(unsafe_spec["deactivate"])
    report = (out / "report.md").read_text()
    assert "| random control |" in report and "faithfulness_heatmap.png" in report and "Document vs memory" in report
    assert json.loads((out / "meta.json").read_text())["control_seeds"] == 2


def test_demo_bad_model_is_one_line(tmp_path, capsys):
    result = run_cli(capsys, "demo", "--model", str(tmp_path / "missing"), "--output", str(tmp_path / "o"))
    assert result.code == 2 and "does not exist" in error_line(result)


def test_experiment_specs_controls_and_tables(load_tiny):
    """The experiment selects its arms from its own detection, controls copy the arm's per-layer size."""
    from moeguard import inspect_moe
    from moeguard.detect_run import Selection
    from moeguard.eval.judge import refusal_rate
    from moeguard.experiment import Arm, Behaviour, ExperimentSettings, markdown_table, run_experiment

    model, tokenizer = load_tiny("olmoe")
    moe = inspect_moe(model)
    behaviour = Behaviour(
        name="counting",
        title="t",
        pairs="builtin:digits-vs-words",
        arms=[Arm("on", Selection(2)), Arm("off", Selection(0, 3, reverse=True))],
        control_of="off",
        prompt_sets={"p": ["Count to five.", "Count from 2 to 4."]},
        judges={"refusal": refusal_rate},
        baseline_sets={"b": ["hi"]},
    )
    (result,) = run_experiment(
        moe, tokenizer, [behaviour], ExperimentSettings(pairs=6, control_seeds=3, max_new_tokens=3)
    )
    expected_off = result.detection.select(0, 3, reverse=True)
    assert result.specs["off"] == expected_off and len(result.specs["on"].activate) == 2
    assert len(result.controls) == 3 and all(
        c.by_layer().keys() == expected_off.by_layer().keys() for c in result.controls
    )
    assert result.score("random control", "p", "refusal").runs == 3
    assert result.score("baseline", "b", "refusal").n_prompts == 1
    table = markdown_table(result.scores + result.baseline_scores)
    assert "| on | 2 |" in table and "–" in table  # conditions without a baseline-only set show a dash
