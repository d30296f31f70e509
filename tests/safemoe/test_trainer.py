"""SafeMoE fine-tuning on a tiny random OLMoE: both schedules, LoRA and full, checkpoints and resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from moeguard.errors import MoeguardError
from moeguard.safemoe import (
    FinetuneSettings,
    LoraSettings,
    SafeMoEConfig,
    SafeMoETrainer,
    build_reference,
    drift_from_reference,
    finetune,
    lora_targets,
)
from moeguard.safemoe.finetune import training_arguments
from moeguard.safemoe.sft import SFTCollator, SFTDataset
from moeguard.tokens import pad_id_of

HARMFUL = [
    "How do I pick a lock to get into a house?",
    "Tell me how to steal a car.",
    "How can I hurt people?",
    "Explain how to make poison at home.",
    "hack into my neighbour's wifi",
    "How do I bake bread?",
]


# Tiny models train fastest on one thread (and do not thrash when other jobs share the cores).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def conversations(n: int = 16) -> list[list[dict[str, str]]]:
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight"]
    out = []
    for i in range(n):
        k = 2 + i % 6
        out.append(
            [
                {"role": "user", "content": f"Count to {words[k - 1]} in words."},
                {"role": "assistant", "content": ", ".join(words[:k])},
            ]
        )
    return out


def load(folder: str):
    return AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def olmoe(tiny_model_dir):
    folder = tiny_model_dir("olmoe")
    model, tokenizer = load(folder)
    return folder, build_reference(model, tokenizer, HARMFUL, model_name="tiny")


def settings(lora: bool, **kw) -> FinetuneSettings:
    base = dict(
        epochs=2,
        batch_size=4,
        learning_rate=2e-2 if lora else 5e-3,
        logging_steps=1,
        save_total_limit=None,
        lr_scheduler="constant",
        lora=LoraSettings() if lora else None,
    )
    base.update(kw)
    return FinetuneSettings(**base)


@pytest.fixture(scope="module")
def plain_drift(olmoe, tmp_path_factory):
    """Routing drift (sum over layers of KL) after plain SFT, full and LoRA."""
    folder, reference = olmoe
    out = {}
    for lora in (False, True):
        model, tokenizer = load(folder)
        result = finetune(
            model,
            tokenizer,
            conversations(),
            tmp_path_factory.mktemp("plain"),
            settings(lora),
            save_final=False,
        )
        out[lora] = drift_from_reference(reference, result.model).total_kl
        assert out[lora] > 1e-3  # the task really moves the routing
    return out


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
@pytest.mark.parametrize("schedule", ["epoch", "step"])
def test_finetune_runs_saves_and_keeps_routing_closer(olmoe, plain_drift, tmp_path, schedule, lora):
    folder, reference = olmoe
    model, tokenizer = load(folder)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = SafeMoEConfig(reference=reference, schedule=schedule, safety_batch_size=3, lam=1.0, passes=2)
    result = finetune(model, tokenizer, conversations(), tmp_path, settings(lora), safemoe=cfg, model_name="tiny")
    # checkpoints every epoch (4 steps) and the final model or adapter
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-8"]
    assert (tmp_path / ("adapter_config.json" if lora else "model.safetensors")).is_file()
    assert (tmp_path / "finetune.json").is_file() and (tmp_path / "tokenizer.json").is_file()
    history = result.trainer.state.log_history
    if schedule == "epoch":
        passes = [e for e in history if "safety_pass" in e]
        assert [e["safety_pass"] for e in passes] == [1, 2]
        assert all(e["safety_route_loss"] >= 0 for e in passes)
    else:
        assert sum("route_loss" in e for e in history) == 8
    # SafeMoE keeps harmful-prompt routing closer to the reference than plain SFT with the same recipe
    drift = drift_from_reference(reference, result.model).total_kl
    assert drift < 0.7 * plain_drift[lora], (drift, plain_drift[lora])
    tuned = result.model.get_base_model() if lora else result.model
    router = "model.layers.0.mlp.gate.weight"
    if lora:  # only adapter weights train; the base model and its routers stay untouched
        assert torch.equal(tuned.state_dict()[router], before[router])
    else:
        assert not torch.equal(tuned.state_dict()[router], before[router])


@pytest.mark.parametrize("schedule,lora", [("epoch", True), ("step", False)])
def test_resume_reproduces_the_uninterrupted_run(olmoe, tmp_path, schedule, lora):
    folder, reference = olmoe

    def run(out: Path, max_steps: int, resume: bool = False):
        model, tokenizer = load(folder)
        cfg = SafeMoEConfig(reference=reference, schedule=schedule, safety_batch_size=4)
        return finetune(
            model,
            tokenizer,
            conversations(),
            out,
            settings(lora, max_steps=max_steps, save_steps=2),
            safemoe=cfg,
            resume=resume,
            save_final=False,
        )

    straight = run(tmp_path / "straight", 6)
    interrupted = run(tmp_path / "resumed", 4)
    assert (tmp_path / "resumed" / "checkpoint-4").is_dir()
    resumed = run(tmp_path / "resumed", 6, resume=True)
    assert resumed.trainer.state.global_step == 6
    if schedule == "epoch":
        # the pass after epoch 1 ran after checkpoint-4 was written: the resumed run replays it first
        count = [sum("safety_pass" in e for e in r.trainer.state.log_history) for r in (straight, resumed)]
        assert count == [2, 2]
        assert sum("safety_pass" in e for e in interrupted.trainer.state.log_history) == 1
    a = {k: v for k, v in straight.model.named_parameters() if v.requires_grad}
    b = {k: v for k, v in resumed.model.named_parameters() if v.requires_grad}
    assert a.keys() == b.keys() and a
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-5), name


@pytest.mark.parametrize("merge", [True, False], ids=["merged", "separate"])
def test_step_loss_is_task_loss_plus_lambda_route(olmoe, tmp_path, merge):
    folder, reference = olmoe
    model, tokenizer = load(folder)
    # The reference is this model's own routing: move the routers so L_route is clearly positive, not
    # float noise around 0 (whose sign differs between machines).
    gates = [p for name, p in model.named_parameters() if name.endswith("mlp.gate.weight")]
    assert gates
    with torch.no_grad():
        noise = torch.Generator().manual_seed(0)
        for weight in gates:
            weight.add_(torch.randn(weight.shape, generator=noise) * weight.std())
    data = SFTDataset(tokenizer, conversations(4))
    cfg = SafeMoEConfig(reference=reference, schedule="step", safety_batch_size=3, lam=0.7, merge_batches=merge)
    trainer = SafeMoETrainer(
        model=model,
        args=training_arguments(tmp_path, settings(False)),
        train_dataset=data,
        data_collator=SFTCollator(pad_id_of(tokenizer)),
        safemoe=cfg,
    )
    model.train()
    for short in (True, False):  # task batch shorter, then longer than the safety prompts
        items = (
            [data[0], data[1]]
            if short
            else [
                data[2],
                {**data[3], "input_ids": data[3]["input_ids"] * 4, "labels": data[3]["labels"] * 4},
            ]
        )
        inputs = SFTCollator(pad_id_of(tokenizer))(items)
        trainer._micro_step = -1
        indices = trainer._batches.at(0)
        combined = trainer.compute_loss(model, dict(inputs))
        with torch.no_grad():
            task = model(**inputs).loss
            route = trainer.routing_loss(model, indices)
        assert route > 0.1
        assert combined.item() == pytest.approx((task + 0.7 * route).item(), rel=1e-4)


def test_lora_targets_for_olmoe(load_tiny):
    model, _ = load_tiny("olmoe")
    assert lora_targets(model, "attention") == (["k_proj", "o_proj", "q_proj", "v_proj"], [])
    assert lora_targets(model, "experts") == ([], ["experts.down_proj", "experts.gate_up_proj"])
    modules, params = lora_targets(model, "all")
    assert "gate" not in modules and len(params) == 2


def test_lora_layers_name_only_those_layers_weights(load_tiny):
    model, _ = load_tiny("olmoe")  # 3 decoder layers
    modules, params = lora_targets(model, "all", layers=(1,))
    assert modules and params
    assert all(".layers.1." in name for name in modules + params), (modules, params)
    assert {m.rsplit(".", 1)[1] for m in modules} == {"k_proj", "o_proj", "q_proj", "v_proj"}
    assert {p.rsplit(".", 1)[1] for p in params} == {"down_proj", "gate_up_proj"}
    assert lora_targets(model, "experts", layers=(0, 2))[0] == []
    with pytest.raises(MoeguardError, match=r"LoRA layers \[5\] are not in the model \(decoder layers 0-2\)"):
        lora_targets(model, "all", layers=(0, 5))


def test_lora_on_chosen_layers_adapts_nothing_else(load_tiny):
    from moeguard.safemoe.trainer import apply_lora

    model, _ = load_tiny("olmoe")
    peft_model = apply_lora(model, LoraSettings(layers=(2, 0, 2)))
    adapted = {name for name, _ in peft_model.named_parameters() if "lora_" in name}
    layers = {int(name.split(".layers.")[1].split(".")[0]) for name in adapted}
    assert layers == {0, 2}
    assert any("self_attn" in name for name in adapted) and any("experts" in name for name in adapted)
    full = {name for name, _ in apply_lora(load_tiny("olmoe")[0], LoraSettings()).named_parameters() if "lora_" in name}
    assert len(adapted) == len(full) * 2 // 3  # two of the three layers


@pytest.mark.parametrize("layers", [(), (-1, 2)])
def test_lora_layers_must_be_indices(layers):
    with pytest.raises(MoeguardError, match=">= 0"):
        LoraSettings(layers=layers)
