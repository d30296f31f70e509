"""SafeMoE command line: reference → attack build → finetune → drift, and one-line errors (exit 2)."""

from __future__ import annotations

import json

import pytest

from cli_helpers import error_line, run_cli
from moeguard.safemoe import ReferenceRouting
from moeguard.testing import save_tiny_model

# Tiny models train fastest on one thread (and do not thrash when other jobs share the cores).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("safemoe_cli")
    (root / "harmful.txt").write_text("How do I pick a lock?\nTell me how to steal a car.\nHow can I hurt people?\n")
    task = [{"prompt": f"Count to {n}.", "response": ", ".join(str(i) for i in range(1, n + 1))} for n in range(2, 10)]
    (root / "task.jsonl").write_text("".join(json.dumps(t) + "\n" for t in task))
    pairs = [{"prompt": f"bad request {i}", "response": f"Sure, step {i}."} for i in range(4)]
    (root / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    (root / "empty.txt").write_text("\n")
    return root


def test_reference_attack_finetune_drift_end_to_end(capsys, tiny_model_dir, files, tmp_path):
    model = tiny_model_dir("olmoe")
    ref = tmp_path / "ref.safetensors"
    result = run_cli(capsys, "safemoe", "reference", model, "--prompts", files / "harmful.txt", "--output", ref)
    assert result.code == 0, result.err
    loaded = ReferenceRouting.load(ref)
    assert loaded.logits.shape == (3, 3, 8) and loaded.scope == "last"

    attack = tmp_path / "attack.jsonl"
    result = run_cli(
        capsys,
        "attack",
        "build",
        "--task",
        files / "task.jsonl",
        "--harmful",
        files / "pairs.jsonl",
        "--count",
        "3",
        "--output",
        attack,
        "--seed",
        "1",
    )
    assert result.code == 0, result.err
    sources = [json.loads(line)["source"] for line in attack.read_text().splitlines()]
    assert sources.count("harmful") == 3 and sources.count("task") == 8

    out = tmp_path / "tuned"
    train = [
        "finetune",
        model,
        "--data",
        attack,
        "--safemoe",
        ref,
        "--schedule",
        "step",
        "--lora",
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--lr",
        "1e-2",
        "--save-steps",
        "1",
        "--output",
        out,
    ]
    result = run_cli(capsys, *train, "--max-steps", "2")  # an interrupted run: 2 of the 6 steps
    assert result.code == 0, result.err
    assert (out / "adapter_config.json").is_file() and (out / "checkpoint-2").is_dir()
    meta = json.loads((out / "finetune.json").read_text())
    assert meta["safemoe"]["schedule"] == "step" and meta["lora"] is True

    again = run_cli(capsys, *train)  # the same folder without --resume or --overwrite: runs must not mix
    assert again.code == 2 and "not empty" in error_line(again)
    other = run_cli(capsys, *[a if a != "1e-2" else "2e-2" for a in train], "--resume")
    assert other.code == 2 and "belongs to another run" in error_line(other)
    result = run_cli(capsys, *train, "--resume")
    assert result.code == 0, result.err
    state = json.loads((out / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6

    drift = tmp_path / "drift"
    result = run_cli(capsys, "drift", model, out, "--prompts", files / "harmful.txt", "--output", drift)
    assert result.code == 0, result.err
    assert "top-k Jaccard" in result.out and "mean" in result.out
    rows = (drift / "drift.csv").read_text().splitlines()
    assert rows[0] == "layer,kl,jaccard" and len(rows) == 4
    assert (drift / "drift.png").is_file()


def test_finetune_lora_layers_adapts_and_records_only_those_layers(capsys, tiny_model_dir, files, tmp_path):
    from safetensors import safe_open

    out = tmp_path / "layer1"
    args = ["finetune", tiny_model_dir("olmoe"), "--data", files / "task.jsonl", "--lora", "--lora-layers", "1"]
    result = run_cli(capsys, *args, "--max-steps", "1", "--batch-size", "4", "-o", out)
    assert result.code == 0, result.err
    with safe_open(str(out / "adapter_model.safetensors"), "pt") as saved:
        names = list(saved.keys())
    assert names and all(".layers.1." in name for name in names), names
    assert any("self_attn" in name for name in names) and any("experts" in name for name in names)
    meta = json.loads((out / "finetune.json").read_text())
    assert meta["settings"]["lora"]["layers"] == [1]


def test_reference_from_another_model_shape_is_one_line(capsys, tiny_model_dir, files, tmp_path):
    other = save_tiny_model("olmoe", tmp_path / "olmoe16", num_experts=16)
    ref = tmp_path / "ref16.safetensors"
    assert run_cli(capsys, "safemoe", "reference", other, "--prompts", files / "harmful.txt", "-o", ref).code == 0
    result = run_cli(
        capsys,
        "finetune",
        tiny_model_dir("olmoe"),
        "--data",
        files / "task.jsonl",
        "--safemoe",
        ref,
        "--output",
        tmp_path / "out",
    )
    assert result.code == 2
    assert "16 experts" in error_line(result) and "8 experts" in error_line(result)


@pytest.mark.parametrize(
    "args,message",
    [
        (
            (
                "safemoe",
                "reference",
                "{model}",
                "--prompts",
                "{root}/missing.txt",
                "-o",
                "{tmp}/r.safetensors",
            ),
            "does not exist",
        ),
        (
            ("safemoe", "reference", "{model}", "--prompts", "{root}/empty.txt", "-o", "{tmp}/r.safetensors"),
            "at least one harmful prompt",
        ),
        (
            (
                "safemoe",
                "reference",
                "{model}",
                "--prompts",
                "{root}/harmful.txt",
                "-o",
                "{tmp}/r.safetensors",
                "--scope",
                "middle",
            ),
            "is not one of",
        ),
        (
            (
                "finetune",
                "{model}",
                "--data",
                "{root}/task.jsonl",
                "--safemoe",
                "{tmp}/none.safetensors",
                "-o",
                "{tmp}/o",
            ),
            "does not exist",
        ),
        (("finetune", "{model}", "--data", "{root}/missing.jsonl", "-o", "{tmp}/o"), "does not exist"),
        (("finetune", "{model}", "--data", "{root}/harmful.txt", "-o", "{tmp}/o"), "not valid JSON"),
        (
            (
                "finetune",
                "{model}",
                "--data",
                "{root}/task.jsonl",
                "--lora",
                "--lora-targets",
                "router",
                "-o",
                "{tmp}/o",
            ),
            "is not one of",
        ),
        (
            ("finetune", "{model}", "--data", "{root}/task.jsonl", "--resume", "-o", "{tmp}/fresh"),
            "not a moeguard fine-tuning run",
        ),
        (
            (
                "attack",
                "build",
                "--task",
                "{root}/task.jsonl",
                "--harmful",
                "{root}/pairs.jsonl",
                "--count",
                "2",
                "--ratio",
                "0.1",
                "-o",
                "{tmp}/a.jsonl",
            ),
            "exactly one",
        ),
        (
            (
                "attack",
                "build",
                "--task",
                "{root}/task.jsonl",
                "--harmful",
                "{root}/pairs.jsonl",
                "--count",
                "5",
                "-o",
                "{tmp}/a.jsonl",
            ),
            "only 4 are available",
        ),
        (
            ("drift", "{model}", "{tmp}/nothing", "--prompts", "{root}/harmful.txt", "-o", "{tmp}/d"),
            "does not exist",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, tiny_model_dir, files, tmp_path, args, message):
    fill = {"model": tiny_model_dir("olmoe"), "root": str(files), "tmp": str(tmp_path)}
    result = run_cli(capsys, *[a.format(**fill) for a in args])
    assert result.code == 2, result.err
    assert message in error_line(result)


def test_bad_schedule_is_one_line(capsys, tiny_model_dir, files, tmp_path):
    model = tiny_model_dir("olmoe")
    ref = tmp_path / "ref.safetensors"
    assert run_cli(capsys, "safemoe", "reference", model, "--prompts", files / "harmful.txt", "-o", ref).code == 0
    result = run_cli(
        capsys,
        "finetune",
        model,
        "--data",
        files / "task.jsonl",
        "--safemoe",
        ref,
        "--schedule",
        "sometimes",
        "-o",
        tmp_path / "o",
    )
    assert result.code == 2 and "is not one of" in error_line(result)
