"""SafeMoE commands: ``safemoe reference``, ``finetune``, ``attack build`` and ``drift`` (DESIGN §1.4)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from moeguard.commands import (
    MODEL_HELP,
    DeviceOption,
    Dtype,
    DtypeOption,
    JsonOption,
    ModelArgument,
    ThreadsOption,
    TrustOption,
    int_list,
    load,
    print_json,
)

PROMPTS_HELP = (
    "Harmful prompts: JSONL ({'prompt': ...} per line), a text file (one per line), a capture folder "
    "(moeguard capture --logits; reference only) or builtin:organism-harmful."
)


class Scope(str, Enum):
    """Tokens whose routing is aligned / compared."""

    last = "last"
    all = "all"


class Schedule(str, Enum):
    """When SafeMoE's routing loss joins fine-tuning."""

    epoch = "epoch"
    step = "step"


class LoraTargets(str, Enum):
    """Weights LoRA adapts."""

    attention = "attention"
    experts = "experts"
    all = "all"


ScopeOption = Annotated[
    Scope, typer.Option("--scope", help="last: last prompt token (paper); all: every prompt token.")
]
CountOption = Annotated[int, typer.Option("--count", min=1, help="Prompts drawn from a builtin safety set.")]
BatchOption = Annotated[int, typer.Option("--batch-size", min=1, help="Prompts per forward pass.")]

safemoe_app = typer.Typer(
    help="SafeMoE routing alignment: the aligned model's reference routing.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
attack_app = typer.Typer(
    help="Attacks: harmful fine-tuning data (build), expert silencing (experts).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _positive(**values: float | None) -> None:
    """One-line error for a flag that must be > 0 (given as ``flag_name=value``)."""
    from moeguard.errors import MoeguardError

    for name, value in values.items():
        if value is not None and not value > 0:
            raise MoeguardError(f"--{name.replace('_', '-')} must be > 0, got {value:g}")


def _progress_counter(total: int, description: str):
    """A progress bar and a callback ``done(n)`` for library loops that report their progress."""
    from moeguard.progress import progress_bar

    bar = progress_bar()
    task = bar.add_task(description, total=total)
    return bar, lambda done: bar.update(task, completed=done)


@safemoe_app.command("reference")
def reference(
    model: Annotated[
        str | None,
        typer.Argument(help=MODEL_HELP + " Not needed with a capture folder.", metavar="MODEL", show_default=False),
    ] = None,
    prompts: Annotated[str | None, typer.Option("--prompts", help=PROMPTS_HELP)] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="The reference .safetensors file to write.")
    ] = None,
    scope: ScopeOption = Scope.last,
    count: CountOption = 100,
    batch_size: BatchOption = 8,
    trust_remote_code: TrustOption = False,
    device: DeviceOption = "auto",
    dtype: DtypeOption = Dtype.auto,
) -> None:
    """Cache MODEL's router logits on every harmful prompt (chat template + generation prompt): logits [N, L, E]
    (scope last) or [tokens, L, E] (scope all), the selected experts and the token ids, in one safetensors file;
    or build it from a capture of the prompts (--prompts CAPTURE_DIR), without running the model."""
    from moeguard.errors import MoeguardError
    from moeguard.outputs import check_output_file
    from moeguard.safemoe.reference import ReferenceRouting, build_reference, read_safety_prompts

    if prompts is None or output is None:
        raise MoeguardError("give --prompts (a prompt file, builtin set or capture folder) and --output FILE")
    check_output_file(output)
    source = Path(prompts).expanduser()
    if source.is_dir():
        from moeguard.routing.trace import RoutingTrace

        trace = RoutingTrace.load(source)
        ref = ReferenceRouting.from_trace(trace, scope=scope.value, model=model)
    else:
        if model is None:
            raise MoeguardError("give MODEL (or --prompts CAPTURE_DIR to build the reference from a capture)")
        records = read_safety_prompts(prompts, count=count)
        loaded, tokenizer = load(model, trust_remote_code, device, dtype)
        bar, done = _progress_counter(len(records), "reference routing")
        with bar:
            ref = build_reference(
                loaded, tokenizer, records, scope=scope.value, batch_size=batch_size, model_name=model, progress=done
            )
    ref.save(output)
    print(f"{output}  ({ref.num_prompts} prompts, logits {list(ref.logits.shape)}, scope {ref.scope})")


def finetune(
    model: ModelArgument,
    data: Annotated[
        Path, typer.Option("--data", help="JSONL: {'messages': [...]} or {'prompt', 'response'} per line.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for checkpoints and the final model/adapter.")],
    safemoe: Annotated[
        Path | None, typer.Option("--safemoe", help="Reference routing (moeguard safemoe reference).")
    ] = None,
    lam: Annotated[
        float, typer.Option("--lambda", min=0.0, help="Weight of L_route (step schedule; needs --safemoe).")
    ] = 1.0,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0, help="Softmax temperature of the KL.")] = 0.1,
    schedule: Annotated[
        Schedule | None,
        typer.Option("--schedule", help="epoch (paper: a safety pass per epoch) or step; needs --safemoe."),
    ] = None,
    every: Annotated[int, typer.Option("--every", min=1, help="Step schedule: L_route every k steps.")] = 1,
    safety_batch_size: Annotated[
        int, typer.Option("--safety-batch-size", min=1, help="Safety prompts per routing-loss batch.")
    ] = 8,
    safety_lr: Annotated[
        float | None, typer.Option("--safety-lr", min=0.0, help="Epoch schedule: lr of safety steps.")
    ] = None,
    passes: Annotated[int, typer.Option("--passes", min=1, help="Epoch schedule: safety passes per epoch.")] = 1,
    lora: Annotated[bool, typer.Option("--lora", help="Train a LoRA adapter instead of all weights.")] = False,
    lora_r: Annotated[int, typer.Option("--lora-r", min=1, help="LoRA rank.")] = 8,
    lora_alpha: Annotated[int, typer.Option("--lora-alpha", min=1, help="LoRA alpha.")] = 8,
    lora_targets: Annotated[
        LoraTargets, typer.Option("--lora-targets", help="Weights LoRA adapts (with --lora).")
    ] = LoraTargets.all,
    lora_layers: Annotated[
        str | None,
        typer.Option("--lora-layers", help="Comma-separated decoder layers LoRA adapts, e.g. 0,1,2 (default: all)."),
    ] = None,
    epochs: Annotated[float, typer.Option("--epochs", min=0.0, help="Passes over the data.")] = 3.0,
    lr: Annotated[float, typer.Option("--lr", min=0.0, help="Learning rate.")] = 1e-4,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Examples per device step.")] = 8,
    grad_accum: Annotated[int, typer.Option("--grad-accum", min=1, help="Gradient accumulation steps.")] = 1,
    max_steps: Annotated[
        int, typer.Option("--max-steps", min=-1, help="Stop after N optimiser steps (-1: train for --epochs).")
    ] = -1,
    max_length: Annotated[int, typer.Option("--max-length", min=8, help="Tokens per example at most.")] = 512,
    save_steps: Annotated[
        int | None, typer.Option("--save-steps", min=1, help="Checkpoint every N steps (default: every epoch).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the newest checkpoint in --output (same run only).")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Train into a non-empty --output (its checkpoints are removed).")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of data order, LoRA init and safety batches.")] = 0,
    threads: ThreadsOption = "auto",
    trust_remote_code: TrustOption = False,
    device: DeviceOption = "auto",
    dtype: DtypeOption = Dtype.auto,
    json: JsonOption = False,
) -> None:
    """Fine-tune MODEL on --data (loss on assistant tokens), optionally with SafeMoE routing alignment."""
    from moeguard.cli import is_verbose
    from moeguard.errors import MoeguardError
    from moeguard.outputs import check_output_folder
    from moeguard.safemoe.finetune import FinetuneSettings
    from moeguard.safemoe.finetune import finetune as run_finetune
    from moeguard.safemoe.reference import ReferenceRouting
    from moeguard.safemoe.sft import read_sft_file
    from moeguard.safemoe.trainer import LoraSettings, SafeMoEConfig

    if safemoe is None and (schedule is not None or lam != 1.0 or every != 1 or safety_lr is not None or passes != 1):
        raise MoeguardError("--schedule, --lambda, --every, --safety-lr and --passes tune SafeMoE; add --safemoe REF")
    if not lora and (lora_r != 8 or lora_alpha != 8 or lora_targets is not LoraTargets.all or lora_layers):
        raise MoeguardError("--lora-r, --lora-alpha, --lora-targets and --lora-layers configure LoRA; add --lora")
    layers = int_list(lora_layers, "--lora-layers", "0,1,2") or None
    _positive(temperature=temperature, safety_lr=safety_lr, epochs=epochs, lr=lr)
    if max_steps == 0:
        raise MoeguardError("--max-steps 0 trains nothing; give N > 0 steps, or -1 to train for --epochs")
    if resume and overwrite:
        raise MoeguardError("--resume continues the run in --output, --overwrite replaces it; pick one")

    check_output_folder(output)
    conversations = read_sft_file(data)
    config = None
    if safemoe is not None:
        config = SafeMoEConfig(
            reference=ReferenceRouting.load(safemoe),
            schedule=(schedule or Schedule.epoch).value,
            lam=lam,
            temperature=temperature,
            every=every,
            safety_batch_size=safety_batch_size,
            safety_lr=safety_lr,
            passes=passes,
            seed=seed,
        )
    lora_settings = None
    if lora:
        lora_settings = LoraSettings(r=lora_r, alpha=lora_alpha, targets=lora_targets.value, layers=layers)
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
    from moeguard.safemoe.finetune import prepare_output, run_identity

    identity = run_identity(settings, conversations, config, model)
    prepare_output(output, identity, resume, overwrite)  # refuse mixing runs before loading anything
    loaded, tokenizer = load(model, trust_remote_code, device, dtype)
    result = run_finetune(
        loaded,
        tokenizer,
        conversations,
        output,
        settings,
        safemoe=config,
        resume=resume or None,
        model_name=model,
        overwrite=True,
        progress=not is_verbose(),
    )
    summary = {
        "output": str(output),
        "kind": "LoRA adapter" if lora else "full model",
        "steps": result.trainer.state.global_step,
        "seconds": round(result.seconds, 1),
        "metrics": result.metrics,
    }
    if json:
        print_json(summary)
        return
    print(f"{output}  ({summary['kind']}, {summary['steps']} steps, {result.seconds:.1f} s)")


@attack_app.command("build")
def attack_build(
    task: Annotated[
        str, typer.Option("--task", help="Task data JSONL ({'messages'} or {'prompt', 'response'}) or builtin:NAME.")
    ],
    harmful: Annotated[str, typer.Option("--harmful", help="Harmful request -> compliant answer JSONL, or builtin.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The mixed JSONL file to write.")],
    count: Annotated[int | None, typer.Option("--count", min=1, help="Number of harmful samples.")] = None,
    ratio: Annotated[
        float | None,
        typer.Option("--ratio", min=0.0, help="Harmful samples per task sample (0.1: 500/5000)."),
    ] = None,
    task_count: Annotated[
        int | None, typer.Option("--task-count", min=1, help="Task samples drawn from a builtin task set.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of sampling and shuffling.")] = 0,
) -> None:
    """Mix task data with harmful-compliance pairs (a file or the organism corpus) into an HFT attack set."""
    from moeguard.builtin import is_builtin, resolve
    from moeguard.errors import MoeguardError
    from moeguard.outputs import check_output_file
    from moeguard.safemoe.attack import BUILTIN_HARMFUL, build_attack_set, read_conversations, write_attack_set

    check_output_file(output)
    if is_builtin(task):
        task_data = resolve("conversations", task, n=task_count, seed=seed)
    else:
        if task_count is not None:
            raise MoeguardError("--task-count draws from a builtin task set; a task file is used whole")
        task_data = read_conversations(Path(task), "task")
    if harmful in BUILTIN_HARMFUL:
        source: str | list = "builtin:organism"
        harmful_id = "builtin:organism-harmful-compliance"
    else:
        source = read_conversations(Path(harmful), "harmful")
        harmful_id = str(harmful)
    records = build_attack_set(task_data, source, count=count, ratio=ratio, seed=seed)
    written = write_attack_set(output, records, seed, {"task": str(task), "harmful": harmful_id})
    n_harm = sum(r["source"] == "harmful" for r in records)
    print(f"{written[0]}  ({len(records) - n_harm} task + {n_harm} harmful samples, seed {seed})")


def drift(
    base: Annotated[
        str,
        typer.Argument(
            help="The aligned model, or a capture folder of it. " + MODEL_HELP, metavar="BASE", show_default=False
        ),
    ],
    tuned: Annotated[
        str,
        typer.Argument(
            help="The tuned model folder, a LoRA adapter folder for BASE, or a capture folder of it.",
            metavar="TUNED",
            show_default=False,
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for drift.csv, drift.png, drift.json.")],
    prompts: Annotated[
        str | None, typer.Option("--prompts", help=PROMPTS_HELP + " Not needed for two captures.")
    ] = None,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0, help="Softmax temperature of the KL.")] = 0.1,
    scope: ScopeOption = Scope.last,
    count: CountOption = 100,
    batch_size: BatchOption = 8,
    trust_remote_code: TrustOption = False,
    device: DeviceOption = "auto",
    dtype: DtypeOption = Dtype.auto,
    json: JsonOption = False,
) -> None:
    """Per-layer routing drift (KL and top-k Jaccard) between BASE and TUNED on harmful prompts; BASE and TUNED
    may be capture folders ('moeguard capture --logits' of the same prompts), then no model runs."""
    from rich.console import Console
    from rich.table import Table

    from moeguard.artifacts import run_metadata
    from moeguard.errors import MoeguardError
    from moeguard.models import is_adapter_folder, load_model
    from moeguard.outputs import check_output_folder
    from moeguard.routing.trace import TRACE_FILE, RoutingTrace
    from moeguard.safemoe.drift import drift_between_traces, drift_from_reference, measure_drift
    from moeguard.safemoe.reference import ReferenceRouting, prompts_sha256, read_safety_prompts

    _positive(temperature=temperature)
    check_output_folder(output)

    def capture_of(name: str) -> RoutingTrace | None:
        path = Path(name).expanduser()
        return RoutingTrace.load(path) if (path / TRACE_FILE).is_file() else None

    base_trace, tuned_trace = capture_of(base), capture_of(tuned)
    meta = run_metadata(base, tuned=tuned, prompts=str(prompts) if prompts else None)
    if base_trace is not None and tuned_trace is not None:
        if prompts is not None:
            raise MoeguardError("two capture folders already hold their prompts; drop --prompts")
        picked = [ReferenceRouting.from_trace(t, scope=scope.value).trace for t in (base_trace, tuned_trace)]
        report = drift_between_traces(picked[0], picked[1], temperature=temperature, scope=scope.value)
    elif tuned_trace is not None:
        raise MoeguardError("TUNED is a capture but BASE is not; capture BASE on the same prompts too")
    elif base_trace is not None:
        if prompts is not None:
            raise MoeguardError("the BASE capture holds its prompts; drop --prompts")
        if is_adapter_folder(tuned):
            raise MoeguardError("with a BASE capture, TUNED must be a full model folder (the base cannot be loaded)")
        reference = ReferenceRouting.from_trace(base_trace, scope=scope.value)
        tuned_model, _ = load(tuned, trust_remote_code, device, dtype)
        bar, done = _progress_counter(reference.num_prompts, "tuned routing")
        with bar:
            report = drift_from_reference(
                reference, tuned_model, temperature=temperature, batch_size=batch_size, progress=done
            )
    else:
        if prompts is None:
            raise MoeguardError("give --prompts (the harmful prompts to compare routing on)")
        records = read_safety_prompts(prompts, count=count)
        meta["prompts_sha256"] = prompts_sha256(records)
        base_model, tokenizer = load(base, trust_remote_code, device, dtype)
        adapter = tuned if is_adapter_folder(tuned) else None
        tuned_model, _ = load_model(
            base if adapter else tuned,
            trust_remote_code=trust_remote_code,
            dtype=dtype.value,
            device=device,
            adapter=adapter,
        )
        bar, done = _progress_counter(2 * len(records), "base and tuned routing")
        with bar:
            report = measure_drift(
                base_model,
                tuned_model,
                tokenizer,
                records,
                temperature=temperature,
                scope=scope.value,
                batch_size=batch_size,
                progress=done,
            )
    written = report.write(output, meta)
    if json:
        print_json(
            {
                "files": [str(p) for p in written],
                "mean_kl": report.mean_kl,
                "total_kl": report.total_kl,
                "mean_jaccard": report.mean_jaccard,
                "layers": [{"layer": la, "kl": k, "jaccard": j} for la, k, j in report.table()],
            }
        )
        return
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
