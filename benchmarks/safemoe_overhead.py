"""Cost of SafeMoE routing alignment as ratios against plain SFT, measured side by side in one run.

    python benchmarks/safemoe_overhead.py [--quick] [--full-finetune]

For a tiny OLMoE and an OLMoE-shaped ~100M-parameter random model (LoRA r=8 by default, as in the
paper) it times, interleaved and by median:

* a plain SFT optimiser step (``Trainer.training_step`` + optimiser step) on a task batch;
* the same step with the ``step`` schedule (``L_task + λ·L_route``, a safety mini-batch every step);
* one safety step of the ``epoch`` schedule (``L_route`` alone on a safety mini-batch).

It prints (step-schedule step) / (plain step), and the ``epoch`` schedule's amortised cost per task
epoch, (task epoch + safety pass) / (task epoch), in the paper's setting: 5,000 task + 500 harmful
samples per epoch and a 100-prompt safety set, both in batches of 8. The paper reports ~2% overhead.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import torch
from transformers import OlmoeConfig, OlmoeForCausalLM

sys.path.insert(0, str(Path(__file__).parent))
from _timing import interleaved_medians  # noqa: E402

from moeguard import inspect_moe  # noqa: E402
from moeguard.routing.unwrap import unwrap  # noqa: E402
from moeguard.safemoe import FinetuneSettings, LoraSettings, ReferenceRouting, SafeMoEConfig  # noqa: E402
from moeguard.safemoe.finetune import training_arguments  # noqa: E402
from moeguard.safemoe.routing import token_routing  # noqa: E402
from moeguard.safemoe.sft import SFTCollator  # noqa: E402
from moeguard.safemoe.trainer import SafeMoETrainer, apply_lora  # noqa: E402
from moeguard.testing import tiny_config  # noqa: E402

PAPER_TASK_SAMPLES = 5500  # 5,000 task + 500 harmful samples per epoch
PAPER_SAFETY_PROMPTS = 100
BATCH = 8


def olmoe_100m() -> OlmoeForCausalLM:
    """OLMoE-1B-7B's shape scaled down: 64 experts, top-8, ~100M parameters."""
    config = OlmoeConfig(
        vocab_size=16384,
        hidden_size=512,
        intermediate_size=96,
        num_hidden_layers=8,
        num_attention_heads=8,
        num_key_value_heads=8,
        num_experts=64,
        num_experts_per_tok=8,
        max_position_embeddings=1024,
    )
    return OlmoeForCausalLM(config)


def random_reference(model, prompts: int, prompt_len: int) -> ReferenceRouting:
    """A reference built from the untuned model on random "prompts" (timing does not care about text)."""
    moe = inspect_moe(unwrap(model))
    generator = torch.Generator().manual_seed(1)
    sequences = [
        torch.randint(3, model.config.vocab_size, (prompt_len - i % 5,), generator=generator).tolist()
        for i in range(prompts)
    ]
    trace = token_routing(model, sequences, pad_id=0, scope="last", batch_size=16, moe=moe)
    trace.meta = {"scope": "last", "model_type": unwrap(model).config.model_type}
    return ReferenceRouting(trace)


def make_trainer(model, reference: ReferenceRouting | None, schedule: str, folder: str) -> SafeMoETrainer:
    args = training_arguments(folder, FinetuneSettings(batch_size=BATCH, logging_steps=10**9))
    safemoe = SafeMoEConfig(reference=reference, schedule=schedule, safety_batch_size=BATCH) if reference else None
    trainer = SafeMoETrainer(model=model, args=args, data_collator=SFTCollator(0), safemoe=safemoe)
    trainer.create_optimizer()
    trainer.current_gradient_accumulation_steps = 1
    return trainer


def measure(name: str, build, seq: int, prompt_len: int, repeats: int, lora: bool) -> dict[str, float]:
    torch.manual_seed(0)
    models = {}
    for variant in ("plain", "step", "epoch"):
        torch.manual_seed(0)
        model = build()
        models[variant] = apply_lora(model, LoraSettings()) if lora else model
    reference = random_reference(models["plain"], PAPER_SAFETY_PROMPTS, prompt_len)
    generator = torch.Generator().manual_seed(2)
    ids = torch.randint(3, models["plain"].config.vocab_size, (BATCH, seq), generator=generator)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}
    folder_dir = tempfile.TemporaryDirectory(prefix="safemoe-bench-")  # removed when this returns
    folder = folder_dir.name
    plain = make_trainer(models["plain"], None, "step", folder)
    step = make_trainer(models["step"], reference, "step", folder)
    epoch = make_trainer(models["epoch"], reference, "epoch", folder)

    def optimiser_step(trainer):
        def run():
            trainer.training_step(trainer.model, dict(batch))
            trainer.optimizer.step()
            trainer.model.zero_grad(set_to_none=True)

        return run

    def safety_step():
        model = epoch.model
        model.train()
        loss = epoch.routing_loss(model, list(range(BATCH)))
        epoch.accelerator.backward(loss)
        epoch.optimizer.step()
        model.zero_grad(set_to_none=True)

    times = interleaved_medians(
        {"plain": optimiser_step(plain), "step": optimiser_step(step), "safety": safety_step}, repeats
    )
    task_steps = math.ceil(PAPER_TASK_SAMPLES / BATCH)
    safety_steps = math.ceil(PAPER_SAFETY_PROMPTS / BATCH)
    epoch_ratio = (task_steps * times["plain"] + safety_steps * times["safety"]) / (task_steps * times["plain"])
    params = sum(p.numel() for p in models["plain"].parameters()) / 1e6
    print(
        f"\n{name}: {params:.1f}M params, {'LoRA r=8' if lora else 'full fine-tuning'}, "
        f"task batch {BATCH}x{seq}, safety prompts ~{prompt_len} tokens"
    )
    print(
        f"  plain SFT step {times['plain'] * 1e3:.1f} ms, step-schedule step {times['step'] * 1e3:.1f} ms, "
        f"safety step {times['safety'] * 1e3:.1f} ms"
    )
    rows = {
        "step schedule (L_route every step) / plain SFT step": times["step"] / times["plain"],
        f"epoch schedule ({task_steps} task + {safety_steps} safety steps) / plain epoch": epoch_ratio,
    }
    for label, ratio in rows.items():
        print(f"  {label:<62} {ratio:.3f}x")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, tiny model only (smoke run)")
    parser.add_argument("--full-finetune", action="store_true", help="train all weights instead of LoRA")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    lora = not args.full_finetune
    repeats = 5 if args.quick else 15
    measure(
        "tiny OLMoE",
        lambda: OlmoeForCausalLM(tiny_config("olmoe")),
        seq=128,
        prompt_len=24,
        repeats=repeats,
        lora=lora,
    )
    if not args.quick:
        measure("OLMoE-shaped ~100M", olmoe_100m, seq=256, prompt_len=32, repeats=5, lora=lora)


if __name__ == "__main__":
    main()
