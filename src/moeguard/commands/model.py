"""``moeguard inspect``, ``generate`` and ``capture``: look at, run and record a model's routing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from moeguard.commands import MODEL_HELP, BackendName, BackendOption, TrustOption


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
    backend: BackendOption = BackendName.hf,
) -> None:
    """Generate a reply to PROMPT (greedy by default), optionally with expert steering; prints only the text."""
    from moeguard.backends import get_backend
    from moeguard.steer import SteeringSpec

    spec = SteeringSpec.load(steer) if steer is not None else None
    engine = get_backend(backend.value, trust_remote_code=trust_remote_code)
    (text,) = engine.generate(model, [prompt], max_new_tokens=max_new_tokens, steer=spec, do_sample=sample, seed=seed)
    print(text)


def capture(
    model: Annotated[str, typer.Argument(help=MODEL_HELP)],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for routing.safetensors and counts.csv.")],
    prompts: Annotated[
        Path | None, typer.Option("--prompts", help='JSONL: {"prompt": ...} or {"messages": [...]} per line.')
    ] = None,
    pairs: Annotated[
        str | None,
        typer.Option("--pairs", help="Pair file or builtin:NAME: record the target spans, as 'detect' counts them."),
    ] = None,
    logits: Annotated[
        bool, typer.Option("--logits", "--probs", help="Also store the router logits of every recorded token.")
    ] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 8,
    max_pairs: Annotated[int | None, typer.Option("--max-pairs", min=1, help="First N pairs only.")] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of a built-in pair set.")] = 0,
    steer: Annotated[Path | None, typer.Option("--steer", help="Capture under a steering spec.")] = None,
    trust_remote_code: TrustOption = False,
    backend: BackendOption = BackendName.hf,
) -> None:
    """Record per-token routing into OUTPUT/routing.safetensors (indices, weights [rows, layers, k], optional
    logits, one sample per prompt or per pair side) and counts.csv (layer, expert, count, tokens)."""
    from moeguard.backends import get_backend
    from moeguard.capture_run import write_capture
    from moeguard.errors import MoeguardError
    from moeguard.steer import SteeringSpec

    if (prompts is None) == (pairs is None):
        raise MoeguardError("give exactly one of --prompts FILE or --pairs FILE")
    if output.exists() and not output.is_dir():
        raise MoeguardError(f"--output {output} is a file; pass a folder for the capture")
    spec = SteeringSpec.load(steer) if steer is not None else None
    if prompts is not None:
        from moeguard.prompts import read_prompts

        records = read_prompts(prompts)
    else:
        from moeguard.data import read_pairs

        pair_records = read_pairs(pairs, max_pairs=max_pairs, seed=seed)
    options = {"capture_logits": True} if logits and backend is BackendName.vllm else {}
    loaded = get_backend(backend.value, trust_remote_code=trust_remote_code, **options).load(model)
    if prompts is not None:
        trace = loaded.capture(records, logits=logits, steer=spec, batch_size=batch_size)
    else:
        trace = loaded.capture_pairs(pair_records, steer=spec, batch_size=batch_size, total=len(pair_records))
    written = write_capture(output, trace)
    for path in written:
        print(path)


def register(app: typer.Typer) -> None:
    app.command()(inspect)
    app.command()(generate)
    app.command()(capture)
