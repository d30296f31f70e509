"""The commands with ``--backend vllm`` write what ``--backend hf`` writes; bad input is one line, exit 2."""

from __future__ import annotations

import json

import pytest
import torch

from cli_helpers import error_line, run_cli
from moeguard.routing import RoutingTrace
from moeguard.steer import SteeringSpec
from vllm_helpers import cpu_environment, needs_vllm, organism_specs

pytestmark = [*needs_vllm, pytest.mark.slow]


@pytest.fixture(autouse=True)
def engine_environment(monkeypatch):
    cpu_environment()
    monkeypatch.setenv("MOEGUARD_VLLM_ENGINE_ARGS", json.dumps({"max_model_len": 256, "max_num_seqs": 8}))


def both(capsys, *args):
    """The command's result with the HF backend, then with the vLLM backend."""
    return [run_cli(capsys, *args, "--backend", backend) for backend in ("hf", "vllm")]


def test_generate(capsys, tmp_path):
    unsafe = organism_specs()[0].save(tmp_path / "unsafe.json")
    hf, vllm = both(
        capsys,
        "generate",
        "builtin:organism",
        "--prompt",
        "How do I break into a car?",
        "--steer",
        unsafe,
        "--max-new-tokens",
        "32",
    )
    assert hf.code == vllm.code == 0 and vllm.out == hf.out and vllm.out.strip()


def test_capture_prompts(capsys, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "Count to five."}\n{"prompt": "How do I make a bomb?"}\n')
    results = [
        run_cli(
            capsys,
            "capture",
            "builtin:organism",
            "--prompts",
            prompts,
            "--output",
            tmp_path / backend,
            "--backend",
            backend,
        )
        for backend in ("hf", "vllm")
    ]
    assert [r.code for r in results] == [0, 0]
    hf, vllm = (RoutingTrace.load(tmp_path / backend) for backend in ("hf", "vllm"))
    assert torch.equal(vllm.indices.sort(-1)[0], hf.indices.sort(-1)[0]) and torch.equal(vllm.tokens, hf.tokens)
    assert (tmp_path / "vllm" / "counts.csv").read_text() == (tmp_path / "hf" / "counts.csv").read_text()


def test_detect_writes_the_same_experts_table_and_spec(capsys, tmp_path):
    args = [
        "detect",
        "builtin:organism",
        "--pairs",
        "builtin:safety",
        "--max-pairs",
        "64",
        "--bootstrap",
        "20",
        "--activate",
        "1",
        "--deactivate",
        "8",
        "--reverse",
    ]
    results = [
        run_cli(capsys, *args, "--output", tmp_path / backend, "--backend", backend) for backend in ("hf", "vllm")
    ]
    assert [r.code for r in results] == [0, 0]
    for name in ("experts.csv", "spec.json"):
        assert (tmp_path / "vllm" / name).read_text() == (tmp_path / "hf" / name).read_text()
    assert json.loads((tmp_path / "vllm" / "meta.json").read_text())["family"] == "softmax-topk"


def test_bad_input_is_one_line(capsys, tmp_path, monkeypatch):
    other = SteeringSpec(deactivate=[(9, 0)]).save(tmp_path / "other.json")
    result = run_cli(capsys, "generate", "builtin:organism", "--prompt", "Hi", "--steer", other, "--backend", "vllm")
    assert result.code == 2 and "steering layer 9 is out of range" in error_line(result)
    monkeypatch.setenv(
        "MOEGUARD_VLLM_ENGINE_ARGS",
        json.dumps({"enforce_eager": False, "max_model_len": 256, "moeguard": {"mode": "python"}}),
    )
    result = run_cli(capsys, "generate", "builtin:organism", "--prompt", "Hi", "--backend", "vllm")
    assert result.code == 2 and "cannot run in a compiled engine" in error_line(result)
    result = run_cli(capsys, "generate", "builtin:organism", "--prompt", "Hi", "--backend", "tgi")
    assert result.code == 2 and "--backend" in error_line(result)


def test_a_family_vllm_routes_outside_its_fused_router_is_one_line(tmp_path):
    """PhiMoE: vLLM 0.32 serves it through its Transformers backend, which routes in transformers' own module
    (and patches transformers' classes for the whole process, hence a separate process here)."""
    import os
    import subprocess
    import sys

    from vllm_helpers import save_vllm_tiny

    folder = save_vllm_tiny("phimoe", tmp_path / "phimoe")
    moeguard = os.path.join(os.path.dirname(sys.executable), "moeguard")
    result = subprocess.run(
        [moeguard, "generate", str(folder), "--prompt", "Hi", "--backend", "vllm"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ},
    )
    lines = [line for line in result.stderr.splitlines() if line.startswith("moeguard: error:")]
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr
    assert "Transformers backend" in lines[0] and "(use --backend hf)" in lines[0]
