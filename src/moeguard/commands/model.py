"""``moeguard inspect``, ``generate`` and ``capture``: look at, run and record a model's routing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from moeguard.commands import MODEL_HELP, TrustOption


def inspect(model: Annotated[str, typer.Argument(help=MODEL_HELP)], trust_remote_code: TrustOption = False) -> None:
    """Show the routing family, layers, experts, top-k and shared experts of MODEL."""
    from rich.console import Console
    from rich.table import Table

    from moeguard.adapters import inspect_moe
    from moeguard.models import load_model

    loaded, _ = load_model(model, trust_remote_code=trust_remote_code)
    summary = inspect_moe(loaded).summary()
    table = Table(title=model, show_header=False)
    for key, value in summary.items():
        if key == "moe_layers":
            value = f"{len(value)} ({', '.join(map(str, value))})"
        table.add_row(key.replace("_", " "), str(value))
    Console().print(table)


def generate(
    model: Annotated[str, typer.Argument(help=MODEL_HELP)],
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="User message (chat template applied if any).")],
    steer: Annotated[Path | None, typer.Option("--steer", help="Steering spec JSON (moeguard detect).")] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1)] = 64,
    sample: Annotated[bool, typer.Option("--sample", help="Sample instead of greedy decoding.")] = False,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    trust_remote_code: TrustOption = False,
) -> None:
    """Generate a reply to PROMPT (greedy by default), optionally with expert steering; prints only the text."""
    import torch

    from moeguard.generation import generate as run_generate
    from moeguard.models import load_model
    from moeguard.steer import SteeringSpec

    spec = SteeringSpec.load(steer) if steer is not None else None
    loaded, tokenizer = load_model(model, trust_remote_code=trust_remote_code)
    torch.manual_seed(seed)
    (text,) = run_generate(loaded, tokenizer, [prompt], max_new_tokens=max_new_tokens, steer=spec, do_sample=sample)
    print(text)


def capture(
    model: Annotated[str, typer.Argument(help=MODEL_HELP)],
    prompts: Annotated[Path, typer.Option("--prompts", help='JSONL: {"prompt": ...} or {"messages": [...]} per line.')],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for routing.safetensors and counts.csv.")],
    probs: Annotated[bool, typer.Option("--probs", help="Also store the full router distribution per token.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 8,
    steer: Annotated[Path | None, typer.Option("--steer", help="Capture under a steering spec.")] = None,
    trust_remote_code: TrustOption = False,
) -> None:
    """Record per-token routing of every prompt: routing.safetensors (i.input_ids, i.indices, i.weights
    [, i.probs]) and counts.csv (layer, expert, count, tokens)."""
    from moeguard.capture_run import capture_prompts
    from moeguard.models import load_model
    from moeguard.prompts import read_prompts
    from moeguard.steer import SteeringSpec

    records = read_prompts(prompts)
    spec = SteeringSpec.load(steer) if steer is not None else None
    loaded, tokenizer = load_model(model, trust_remote_code=trust_remote_code)
    written = capture_prompts(loaded, tokenizer, records, output, probs=probs, batch_size=batch_size,
                              steer=spec, model_name=model)
    for path in written:
        print(path)


def register(app: typer.Typer) -> None:
    app.command()(inspect)
    app.command()(generate)
    app.command()(capture)
