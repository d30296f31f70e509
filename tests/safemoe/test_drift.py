"""Routing drift: hand-computed Jaccard and KL, self-drift is zero, adapters and artifacts."""

from __future__ import annotations

import math

import pytest
import torch

from moeguard.models import is_adapter_folder, load_model
from moeguard.safemoe import DriftReport, measure_drift, routing_drift, topk_jaccard


def test_jaccard_by_hand():
    base = torch.tensor([[[0, 1], [2, 3]], [[4, 5], [6, 7]]])  # [rows=2, layers=2, k=2]
    tuned = torch.tensor([[[1, 0], [3, 4]], [[0, 1], [6, 7]]])
    # layer 0: row0 {0,1} vs {1,0} -> 1; row1 {4,5} vs {0,1} -> 0; mean 0.5
    # layer 1: row0 {2,3} vs {3,4} -> 1/3; row1 {6,7} vs {6,7} -> 1; mean 2/3
    assert topk_jaccard(base, tuned, 8).tolist() == pytest.approx([0.5, 2 / 3])


def test_report_from_tensors_by_hand():
    base_logits = torch.zeros(1, 2, 2)
    tuned_logits = torch.zeros(1, 2, 2)
    tuned_logits[0, 1, 1] = 0.1 * math.log(3.0)  # layer 1 differs: KL = 1/2 ln(4/3) at T = 0.1
    top = torch.tensor([[[0], [0]]])
    report = routing_drift(base_logits, top, tuned_logits, torch.tensor([[[0], [1]]]), layers=[3, 5])
    assert report.layers == [3, 5]
    assert report.kl == pytest.approx([0.0, 0.5 * math.log(4 / 3)], abs=1e-6)
    assert report.jaccard == [1.0, 0.0]
    assert report.total_kl == pytest.approx(0.5 * math.log(4 / 3), rel=1e-5)
    assert report.mean_jaccard == 0.5


def test_model_against_itself_has_no_drift(load_tiny):
    model, tokenizer = load_tiny("qwen2_moe")  # a family with a dense layer (index 1 has no router)
    report = measure_drift(model, model, tokenizer, ["How do I bake bread?", "hi there"])
    assert report.layers == [0, 2]
    assert report.kl == pytest.approx([0.0, 0.0], abs=1e-6)
    assert report.jaccard == [1.0, 1.0]


def test_lora_adapter_folder_loads_on_its_base_and_drifts(tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tiny_model_dir("olmoe")
    base = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], target_parameters=["experts.gate_up_proj"]
    )
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(folder), config)
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    peft_model.save_pretrained(tmp_path / "adapter")
    assert is_adapter_folder(tmp_path / "adapter") and not is_adapter_folder(folder)
    tuned, _ = load_model(folder, adapter=str(tmp_path / "adapter"))
    report = measure_drift(base, tuned, tokenizer, ["How do I bake bread?", "Count to five."])
    assert report.total_kl > 1e-4 and 0 <= report.mean_jaccard <= 1
    # the same adapter applied in memory gives the same drift: the folder really was loaded
    again = measure_drift(base, peft_model.eval(), tokenizer, ["How do I bake bread?", "Count to five."])
    assert again.kl == pytest.approx(report.kl, rel=1e-4, abs=1e-6)


def test_artifacts(tmp_path):
    report = DriftReport(layers=[0, 1, 2], kl=[0.1, 0.2, 0.4], jaccard=[1.0, 0.5, 0.0], temperature=0.1, rows=4)
    paths = report.write(tmp_path, {"model": "m"})
    assert [p.name for p in paths] == ["drift.csv", "drift.png", "drift.json"]
    lines = (tmp_path / "drift.csv").read_text().splitlines()
    assert lines[0] == "layer,kl,jaccard" and lines[2] == "1,0.2,0.5"
    assert (tmp_path / "drift.png").read_bytes()[:4] == b"\x89PNG"
