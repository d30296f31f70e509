"""CLI: inspect, generate, capture, and one-line errors with exit code 2."""

from __future__ import annotations

import json

import pytest
import torch

from cli_helpers import error_line, run_cli
from moeguard import RoutingRecorder, inspect_moe
from moeguard.models import load_model
from moeguard.routing import RoutingTrace


def test_inspect_prints_family_and_shape(tiny_model_dir, capsys):
    result = run_cli(capsys, "inspect", tiny_model_dir("deepseek_v3"))
    assert result.code == 0
    assert "deepseek-v3" in result.out and "2 (1, 2)" in result.out


def test_generate_greedy_is_deterministic_and_steerable(tiny_model_dir, tmp_path, capsys):
    folder = tiny_model_dir("olmoe")
    first = run_cli(capsys, "generate", folder, "--prompt", "Count to five.", "--max-new-tokens", "8")
    second = run_cli(capsys, "generate", folder, "--prompt", "Count to five.", "--max-new-tokens", "8")
    assert first.code == 0 and first.out == second.out and first.out.strip()
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"activate": [[0, 1], [1, 1], [2, 1]], "deactivate": [[0, 0]]}))
    steered = run_cli(capsys, "generate", folder, "--prompt", "Count to five.", "--steer", spec)
    assert steered.code == 0


def test_capture_writes_traces_and_counts(tiny_model_dir, tmp_path, capsys):
    folder = tiny_model_dir("qwen2_moe")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        '{"prompt": "Count to five."}\n\n'
        '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there"}]}\n'
        '{"prompt": "How do I bake bread?"}\n'
    )
    out = tmp_path / "out"
    result = run_cli(capsys, "capture", folder, "--prompts", prompts, "--output", out, "--probs", "--batch-size", "2")
    assert result.code == 0, result.err
    model, tokenizer = load_model(folder)
    moe = inspect_moe(model)
    trace = RoutingTrace.load(out)
    assert trace.layers == moe.layers == [0, 2] and trace.num_samples == 3
    assert trace.logits.shape == (trace.num_rows, 2, 8) and trace.weights.shape == (trace.num_rows, 2, 2)
    assert trace.meta["model"] == folder and trace.meta["kind"] == "prompts"
    total = 0
    for i, ids in enumerate(trace.sequences):
        # the saved routing is what the model does on the same ids alone (unpadded)
        recorder = RoutingRecorder(model, traces=True, logits=True)
        with recorder:
            recorder.run(torch.tensor([ids]))
        alone = recorder.trace()
        sample = trace.select_samples([i])
        assert torch.equal(alone.indices, sample.indices)
        assert torch.allclose(alone.logits, sample.logits, atol=1e-5)
        assert sample.input_ids.tolist() == ids
        total += len(ids)
    rows = (out / "counts.csv").read_text().splitlines()
    assert rows[0] == "layer,expert,count,tokens"
    assert len(rows) == 1 + 2 * 8
    assert {int(r.split(",")[3]) for r in rows[1:]} == {total}
    assert sum(int(r.split(",")[2]) for r in rows[1:]) == total * 2 * 2


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["inspect", "/does/not/exist"], "does not exist"),
        (["generate", "{model}", "--prompt", "x", "--steer", "{bad_spec}"], "not valid JSON"),
        (["generate", "{model}", "--prompt", "x", "--steer", "{range_spec}"], "out of range"),
        (["generate", "{model}", "--prompt", "x", "--steer", "{topk_spec}"], "top_k=2"),
        (["generate", "{model}", "--prompt", "x", "--steer", "{missing}"], "does not exist"),
        (["capture", "{model}", "--prompts", "{empty}", "--output", "{out}"], "has no prompts"),
        (["capture", "{model}", "--prompts", "{bad_spec}", "--output", "{out}"], "not valid JSON"),
        (["inspect", "{dense}"], "not a supported MoE family"),
        (["generate", "{model}"], "Missing option"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, fragment, tiny_model_dir, tmp_path, capsys):
    from transformers import LlamaConfig, LlamaForCausalLM

    from moeguard.testing import train_test_tokenizer

    dense = tmp_path / "dense"
    LlamaForCausalLM(
        LlamaConfig(vocab_size=512, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    ).save_pretrained(dense)
    train_test_tokenizer().save_pretrained(dense)
    files = {
        "bad_spec": ("{oops", tmp_path / "bad.json"),
        "range_spec": ('{"activate": [[5, 0]]}', tmp_path / "range.json"),
        "topk_spec": ('{"activate": [[0, 0], [0, 1], [0, 2]]}', tmp_path / "topk.json"),
        "empty": ("\n", tmp_path / "empty.jsonl"),
    }
    for text, path in files.values():
        path.write_text(text)
    values = {k: str(p) for k, (_, p) in files.items()}
    values.update(
        model=tiny_model_dir("olmoe"), missing=str(tmp_path / "nope.json"), out=str(tmp_path / "o"), dense=str(dense)
    )
    result = run_cli(capsys, *[a.format(**values) for a in args])
    assert result.code == 2
    assert fragment in error_line(result)


def test_lora_output_folder_loads_in_every_model_command(tiny_model_dir, tmp_path, capsys):
    """A LoRA folder written by 'moeguard finetune' is a MODEL everywhere, also after moving it."""
    import shutil

    folder = tiny_model_dir("olmoe")
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"Count to {n}.", "response": "1, 2, 3."}) + "\n" for n in range(4)))
    tuned = tmp_path / "tuned"
    import os

    relative = os.path.relpath(folder)  # a relative base path must not end up in the adapter config
    made = run_cli(
        capsys, "finetune", relative, "--data", data, "--output", tuned, "--lora", "--max-steps", "2", "--lr", "1e-2"
    )
    assert made.code == 0, made.err
    moved = tmp_path / "moved" / "adapter"
    shutil.move(str(tuned), str(moved))
    config = json.loads((moved / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(__import__("pathlib").Path(folder).resolve())
    inspected = run_cli(capsys, "inspect", moved)
    assert inspected.code == 0 and "olmoe" in inspected.out
    assert run_cli(capsys, "generate", moved, "--prompt", "Count to five.", "--max-new-tokens", "4").code == 0
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "Count to five."}\n')
    assert run_cli(capsys, "capture", moved, "--prompts", prompts, "--output", tmp_path / "cap").code == 0
    from peft import PeftModel

    model, _ = load_model(str(moved))
    assert isinstance(model, PeftModel)
