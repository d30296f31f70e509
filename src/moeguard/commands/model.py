"""``moeguard inspect``, ``generate`` and ``capture``: look at, run and record a model's routing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from moeguard.commands import (
    AllowUnregisteredOption,
    BackendName,
    BackendOption,
    DeviceOption,
    Dtype,
    DtypeOption,
    ForceOption,
    JsonOption,
    ModelArgument,
    TrustOption,
    load,
    load_engine,
    print_json,
)

SteerOption = Annotated[
    Path | None, typer.Option("--steer", help="Steering spec JSON (written by 'moeguard detect' or by hand).")
]


def _spec(steer: Path | None, model: str, force: bool):
    """The steering spec (checked against MODEL) and the note of a forced mismatch."""
    from moeguard.steer import SteeringSpec

    if steer is None:
        return None, None
    spec = SteeringSpec.load(steer)
    return spec, spec.check_model(model, force, source=f"steering spec {steer}")


def inspect(
    model: ModelArgument,
    trust_remote_code: TrustOption = False,
    device: DeviceOption = "auto",
    dtype: DtypeOption = Dtype.auto,
    json: JsonOption = False,
    allow_unregistered: AllowUnregisteredOption = False,
) -> None:
    """Show the routing family, layers, experts, top-k and shared experts of MODEL."""
    from rich.console import Console
    from rich.table import Table

    from moeguard.adapters import inspect_moe

    loaded, _ = load(model, trust_remote_code, device, dtype, allow_unregistered)
    summary = inspect_moe(loaded).summary()
    if json:
        print_json({"model": model, **summary})
        return
    table = Table(title=model, show_header=False)
    for key, value in summary.items():
        if key == "moe_layers":
            value = f"{len(value)} ({', '.join(map(str, value))})"
        table.add_row(key.replace("_", " "), str(value))
    Console().print(table)


def generate(
    model: ModelArgument,
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="User message (chat template applied if any).")],
    steer: SteerOption = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1, help="Tokens to generate at most.")] = 64,
    sample: Annotated[bool, typer.Option("--sample", help="Sample instead of greedy decoding.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sampler (with --sample).")] = 0,
    force: ForceOption = False,
    trust_remote_code: TrustOption = False,
    device: DeviceOption = "auto",
    dtype: DtypeOption = Dtype.auto,
    allow_unregistered: AllowUnregisteredOption = False,
    backend: BackendOption = BackendName.hf,
) -> None:
    """Generate a reply to PROMPT (greedy by default), optionally with expert steering; prints only the text."""
    if not prompt.strip():
        from moeguard.errors import MoeguardError

        raise MoeguardError("--prompt is empty; give the user message to answer")
    spec, note = _spec(steer, model, force)
    engine = load_engine(backend, model, trust_remote_code, device, dtype, allow_unregistered)
    if note:
        print(f"note: {note} (--force)", file=__import__("sys").stderr)
    (text,) = engine.generate([prompt], max_new_tokens=max_new_tokens, steer=spec, do_sample=sample, seed=seed)
    print(text)


def capture(
    model: ModelArgument,
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
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Sequences per forward pass.")] = 8,
    max_pairs: Annotated[int | None, typer.Option("--max-pairs", min=1, help="First N pairs only.")] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of a built-in pair set.")] = 0,
    steer: SteerOption = None,
    force: ForceOption = False,
    trust_remote_code: TrustOption = False,
    device: DeviceOption = "auto",
    dtype: DtypeOption = Dtype.auto,
    json: JsonOption = False,
    allow_unregistered: AllowUnregisteredOption = False,
    backend: BackendOption = BackendName.hf,
) -> None:
    """Record per-token routing into OUTPUT/routing.safetensors (indices, weights [rows, layers, k], optional
    logits, one sample per prompt or per pair side) and counts.csv (layer, expert, count, tokens)."""
    from moeguard.capture_run import write_capture
    from moeguard.errors import MoeguardError
    from moeguard.outputs import check_output_folder

    if (prompts is None) == (pairs is None):
        raise MoeguardError("give exactly one of --prompts FILE or --pairs FILE")
    if pairs is not None and logits:
        raise MoeguardError("--logits records prompt tokens; a capture of --pairs keeps the selected experts only")
    check_output_folder(output)
    spec, note = _spec(steer, model, force)
    if prompts is not None:
        from moeguard.prompts import read_prompts

        records = read_prompts(prompts)
    else:
        from moeguard.data import read_pairs

        assert pairs is not None
        pair_records = read_pairs(pairs, max_pairs=max_pairs, seed=seed)
    options = {"capture_logits": True} if logits and backend is BackendName.vllm else {}
    loaded = load_engine(backend, model, trust_remote_code, device, dtype, allow_unregistered, **options)
    if prompts is not None:
        trace = loaded.capture(records, logits=logits, steer=spec, batch_size=batch_size)
    else:
        trace = loaded.capture_pairs(pair_records, steer=spec, batch_size=batch_size, total=len(pair_records))
    if note:
        trace.meta["spec_model_mismatch"] = note
    written = write_capture(output, trace)
    if json:
        print_json({"files": [str(p) for p in written]})
        return
    for path in written:
        print(path)


def register(app: typer.Typer) -> None:
    app.command()(inspect)
    app.command()(generate)
    app.command()(capture)
