"""``moeguard eval``: a benchmark under steering conditions (baseline, specs, random controls, jailbreaks)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from moeguard.commands import DeviceOption, Dtype, DtypeOption, ModelArgument, ThreadsOption, TrustOption

BENCHMARK_HELP = (
    "A benchmark file or folder in its published schema, NAME:PATH, a known NAME (its hub copy) or builtin:NAME "
    "(organism-harmful, organism-benign, organism-lookalike, organism-counting, organism-handwritten, ...)."
)
STEER_HELP = "A steering spec (spec.json or a detect run folder); repeat for several. Named by file stem."
CONTROL_HELP = "Random-expert control per --steer spec: the same number of experts per layer, over N seeds."
JAILBREAK_HELP = (
    "A jailbreak transform NAME[,NAME] (composed left to right): prefix_injection, refusal_suppression, "
    "roleplay, few_shot. Repeat for several; every condition runs with each and without."
)
JUDGE_HELP = "refusal (offline, default), organism (three-way), or a local causal-LM folder (Llama-Guard-style)."
OUTPUT_HELP = "Run folder: samples.jsonl, summary.csv, summary.json, run.json. Rerun to resume."


def eval_command(
    model: ModelArgument,
    benchmark: Annotated[str, typer.Option("--benchmark", "-b", help=BENCHMARK_HELP)],
    output: Annotated[Path, typer.Option("--output", "-o", help=OUTPUT_HELP)],
    split: Annotated[str | None, typer.Option("--split", help="A benchmark part or a label filter.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="First N items only.")] = None,
    steer: Annotated[list[Path] | None, typer.Option("--steer", help=STEER_HELP)] = None,
    control: Annotated[int, typer.Option("--control", min=0, help=CONTROL_HELP)] = 0,
    jailbreak: Annotated[list[str] | None, typer.Option("--jailbreak", help=JAILBREAK_HELP)] = None,
    judge: Annotated[str, typer.Option("--judge", help=JUDGE_HELP)] = "refusal",
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1, help="Tokens generated per reply.")] = 40,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Prompts per generate call.")] = 40,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Generation, control and bootstrap seed.")] = 0,
    bootstrap: Annotated[int, typer.Option("--bootstrap", min=1, help="Bootstrap resamples for the CIs.")] = 1000,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace another run in --output.")] = False,
    trust_remote_code: TrustOption = False,
    device: DeviceOption = "auto",
    dtype: DtypeOption = Dtype.auto,
    threads: ThreadsOption = "auto",
) -> None:
    """Evaluate MODEL on a benchmark: baseline, each --steer spec, random controls and jailbreaks side by side.

    Writes per-sample JSONL and a summary (refusal, harmful, over-refusal, faithfulness rates with bootstrap
    95% CIs; differences against the baseline with paired-bootstrap CIs and exact McNemar tests). An
    interrupted run continues where it stopped when started again with the same options.
    """
    from rich.console import Console

    from moeguard.eval.console import summary_table
    from moeguard.eval.run import EvalSettings, run_eval

    settings = EvalSettings(
        model=model,
        benchmark=benchmark,
        output=output,
        split=split,
        limit=limit,
        steer=tuple(steer or ()),
        control=control,
        jailbreaks=tuple(jailbreak or ()),
        judge=judge,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
        bootstrap=bootstrap,
        overwrite=overwrite,
        trust_remote_code=trust_remote_code,
        device=device,
        dtype=dtype.value,
    )
    result = run_eval(settings)
    console = Console(width=None if sys.stdout.isatty() else 132)
    for table in summary_table(result.rows, title=f"{model} on {benchmark}"):
        console.print(table)
    if result.generated < result.samples:
        console.print(
            f"resumed: {result.samples - result.generated} samples from {output}/samples.jsonl, "
            f"{result.generated} generated now"
        )
    for path in result.files:
        print(path)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
