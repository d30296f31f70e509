"""SafeMoE commands: ``safemoe reference``, ``finetune``, ``attack build`` and ``drift`` (DESIGN §1.4)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from moeguard.commands import MODEL_HELP, TrustOption

PROMPTS_HELP = (
    "Harmful prompts: JSONL ({'prompt': ...} per line), a text file (one per line) "
    "or builtin:organism-harmful."
)

CountOption = Annotated[int, typer.Option("--count", min=1, help="Prompts drawn from a builtin safety set.")]
BatchOption = Annotated[int, typer.Option("--batch-size", min=1)]

safemoe_app = typer.Typer(
    help="SafeMoE routing alignment: the aligned model's reference routing.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
attack_app = typer.Typer(
    help="Harmful fine-tuning (HFT) attack data.", no_args_is_help=True, rich_markup_mode=None
)


@safemoe_app.command("reference")
def reference(
    model: Annotated[str, typer.Argument(help=MODEL_HELP)],
    prompts: Annotated[str, typer.Option("--prompts", help=PROMPTS_HELP)],
    output: Annotated[Path, typer.Option("--output", "-o", help="The reference .safetensors file to write.")],
    scope: Annotated[
        str, typer.Option("--scope", help="last: last prompt token (paper); all: every prompt token.")
    ] = "last",
    count: CountOption = 100,
    batch_size: BatchOption = 8,
    trust_remote_code: TrustOption = False,
) -> None:
    """Cache MODEL's router logits on every harmful prompt (chat template + generation prompt): tensor
    logits [N, L, E] (scope last) or [tokens, L, E] (scope all), plus topk, input_ids, lengths and
    metadata."""
    from moeguard.models import load_model
    from moeguard.safemoe.reference import build_reference, read_safety_prompts
    from moeguard.tokens import check_scope

    check_scope(scope)
    records = read_safety_prompts(prompts, count=count)
    loaded, tokenizer = load_model(model, trust_remote_code=trust_remote_code)
    ref = build_reference(
        loaded,
        tokenizer,
        records,
        scope=scope,
        batch_size=batch_size,  # type: ignore[arg-type]
        model_name=model,
    )
    ref.save(output)
    print(f"{output}  ({ref.num_prompts} prompts, logits {list(ref.logits.shape)}, scope {ref.scope})")


def finetune(
    model: Annotated[str, typer.Argument(help=MODEL_HELP)],
    data: Annotated[
        Path, typer.Option("--data", help="JSONL: {'messages': [...]} or {'prompt', 'response'} per line.")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for checkpoints and the final model/adapter.")
    ],
    safemoe: Annotated[
        Path | None, typer.Option("--safemoe", help="Reference routing (moeguard safemoe reference).")
    ] = None,
    lam: Annotated[float, typer.Option("--lambda", min=0.0, help="Weight of L_route (step schedule).")] = 1.0,
    temperature: Annotated[float, typer.Option("--temperature", help="Softmax temperature of the KL.")] = 0.1,
    schedule: Annotated[
        str, typer.Option("--schedule", help="epoch (paper: a safety pass per epoch) or step.")
    ] = "epoch",
    every: Annotated[int, typer.Option("--every", min=1, help="Step schedule: L_route every k steps.")] = 1,
    safety_batch_size: Annotated[int, typer.Option("--safety-batch-size", min=1)] = 8,
    safety_lr: Annotated[
        float | None, typer.Option("--safety-lr", help="Epoch schedule: lr of safety steps.")
    ] = None,
    passes: Annotated[
        int, typer.Option("--passes", min=1, help="Epoch schedule: safety passes per epoch.")
    ] = 1,
    lora: Annotated[
        bool, typer.Option("--lora", help="Train a LoRA adapter instead of all weights.")
    ] = False,
    lora_r: Annotated[int, typer.Option("--lora-r", min=1)] = 8,
    lora_alpha: Annotated[int, typer.Option("--lora-alpha", min=1)] = 8,
    lora_targets: Annotated[str, typer.Option("--lora-targets", help="attention, experts or all.")] = "all",
    epochs: Annotated[float, typer.Option("--epochs", min=0.0)] = 3.0,
    lr: Annotated[float, typer.Option("--lr", min=0.0)] = 1e-4,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 8,
    grad_accum: Annotated[int, typer.Option("--grad-accum", min=1)] = 1,
    max_steps: Annotated[
        int, typer.Option("--max-steps", help="Stop after N optimiser steps (-1: epochs).")
    ] = -1,
    max_length: Annotated[int, typer.Option("--max-length", min=8)] = 512,
    save_steps: Annotated[
        int | None, typer.Option("--save-steps", min=1, help="Checkpoint every N steps.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the newest checkpoint in --output.")
    ] = False,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    trust_remote_code: TrustOption = False,
) -> None:
    """Fine-tune MODEL on --data (loss on assistant tokens), optionally with SafeMoE routing alignment."""
    from moeguard.models import load_model
    from moeguard.safemoe.finetune import FinetuneSettings
    from moeguard.safemoe.finetune import finetune as run_finetune
    from moeguard.safemoe.reference import ReferenceRouting
    from moeguard.safemoe.sft import read_sft_file
    from moeguard.safemoe.trainer import LoraSettings, SafeMoEConfig

    conversations = read_sft_file(data)
    config = None
    if safemoe is not None:
        config = SafeMoEConfig(
            reference=ReferenceRouting.load(safemoe),
            schedule=schedule,
            lam=lam,  # type: ignore[arg-type]
            temperature=temperature,
            every=every,
            safety_batch_size=safety_batch_size,
            safety_lr=safety_lr,
            passes=passes,
            seed=seed,
        )
    lora_settings = LoraSettings(r=lora_r, alpha=lora_alpha, targets=lora_targets) if lora else None  # type: ignore[arg-type]
    settings = FinetuneSettings(
        epochs=epochs,
        learning_rate=lr,
        batch_size=batch_size,
        grad_accum=grad_accum,
        max_steps=max_steps,
        max_length=max_length,
        save_steps=save_steps,
        seed=seed,
        lora=lora_settings,
    )
    loaded, tokenizer = load_model(model, trust_remote_code=trust_remote_code)
    result = run_finetune(
        loaded,
        tokenizer,
        conversations,
        output,
        settings,
        safemoe=config,
        resume=resume or None,
        model_name=model,
    )
    print(
        f"{output}  ({'LoRA adapter' if lora else 'full model'}, {result.trainer.state.global_step} steps, "
        f"{result.seconds:.1f} s)"
    )


@attack_app.command("build")
def attack_build(
    task: Annotated[
        Path, typer.Option("--task", help="Task data JSONL ({'messages'} or {'prompt', 'response'}).")
    ],
    harmful: Annotated[
        str, typer.Option("--harmful", help="Harmful request -> compliant answer JSONL, or builtin.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The mixed JSONL file to write.")],
    count: Annotated[int | None, typer.Option("--count", help="Number of harmful samples.")] = None,
    ratio: Annotated[
        float | None, typer.Option("--ratio", help="Harmful samples per task sample (0.1: 500/5000).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Mix task data with harmful-compliance pairs (a file or the organism corpus) into an HFT attack set."""
    from moeguard.safemoe.attack import (
        BUILTIN_HARMFUL,
        build_attack_set,
        read_conversations,
        write_attack_set,
    )

    task_data = read_conversations(task, "task")
    if harmful in BUILTIN_HARMFUL:
        source: str | list = "builtin:organism"
        harmful_id = "builtin:organism"
    else:
        source = read_conversations(Path(harmful), "harmful")
        harmful_id = str(harmful)
    records = build_attack_set(task_data, source, count=count, ratio=ratio, seed=seed)
    written = write_attack_set(output, records, seed, {"task": str(task), "harmful": harmful_id})
    n_harm = sum(r["source"] == "harmful" for r in records)
    print(f"{written[0]}  ({len(records) - n_harm} task + {n_harm} harmful samples, seed {seed})")


def drift(
    base: Annotated[str, typer.Argument(help="The aligned model. " + MODEL_HELP)],
    tuned: Annotated[str, typer.Argument(help="The tuned model folder, or a LoRA adapter folder for BASE.")],
    prompts: Annotated[str, typer.Option("--prompts", help=PROMPTS_HELP)],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for drift.csv, drift.png, drift.json.")
    ],
    temperature: Annotated[float, typer.Option("--temperature", help="Softmax temperature of the KL.")] = 0.1,
    scope: Annotated[
        str, typer.Option("--scope", help="last (last prompt token) or all prompt tokens.")
    ] = "last",
    count: CountOption = 100,
    batch_size: BatchOption = 8,
    trust_remote_code: TrustOption = False,
) -> None:
    """Per-layer routing drift (KL and top-k Jaccard) between BASE and TUNED on harmful prompts."""
    from rich.console import Console
    from rich.table import Table

    from moeguard.artifacts import run_metadata
    from moeguard.errors import MoeguardError
    from moeguard.models import load_model
    from moeguard.safemoe.drift import measure_drift
    from moeguard.safemoe.reference import prompts_sha256, read_safety_prompts
    from moeguard.tokens import check_scope

    check_scope(scope)
    if not temperature > 0:
        raise MoeguardError(f"--temperature must be > 0, got {temperature}")
    records = read_safety_prompts(prompts, count=count)
    base_model, tokenizer = load_model(base, trust_remote_code=trust_remote_code)
    from moeguard.models import is_adapter_folder

    adapter = tuned if is_adapter_folder(tuned) else None
    tuned_model, _ = load_model(base if adapter else tuned, trust_remote_code=trust_remote_code, adapter=adapter)
    report = measure_drift(
        base_model,
        tuned_model,
        tokenizer,
        records,
        temperature=temperature,
        scope=scope,
        batch_size=batch_size,
    )  # type: ignore[arg-type]
    report.write(
        output, run_metadata(base, tuned=tuned, prompts=str(prompts), prompts_sha256=prompts_sha256(records))
    )
    table = Table(title=f"routing drift: {base} -> {tuned} ({report.rows} rows, T={temperature:g})")
    table.add_column("layer", justify="right")
    table.add_column("KL", justify="right")
    table.add_column("top-k Jaccard", justify="right")
    for layer, kl, jac in report.table():
        table.add_row(str(layer), f"{kl:.4f}", f"{jac:.3f}")
    table.add_row("mean", f"{report.mean_kl:.4f}", f"{report.mean_jaccard:.3f}", style="bold")
    Console().print(table)
    print(output / "drift.csv")


def register(app: typer.Typer) -> None:
    app.add_typer(safemoe_app, name="safemoe")
    app.add_typer(attack_app, name="attack")
    app.command()(finetune)
    app.command()(drift)
