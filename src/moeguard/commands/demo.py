"""``moeguard demo``: SteerMoE end to end on the built-in organism (CPU, no download)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from moeguard.commands import (
    BackendName,
    BackendOption,
    DeviceOption,
    Dtype,
    DtypeOption,
    JsonOption,
    ThreadsOption,
    print_json,
)


def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for tables, heatmaps, specs, report.")] = Path(
        "moeguard-demo"
    ),
    model: Annotated[str, typer.Option("--model", help="Model to run on (default: the built-in organism).")] = (
        "builtin:organism"
    ),
    pairs: Annotated[int, typer.Option("--pairs", min=10, help="Contrast pairs per detection.")] = 200,
    control_seeds: Annotated[int, typer.Option("--control-seeds", min=2, help="Random-control seeds.")] = 5,
    safe_activate: Annotated[
        int | None, typer.Option("--safe-activate", min=1, help="Refusal-linked experts to activate (safe steering).")
    ] = None,
    unsafe_activate: Annotated[
        int | None, typer.Option("--unsafe-activate", min=0, help="Compliance-linked experts to activate (unsafe).")
    ] = None,
    unsafe_deactivate: Annotated[
        int | None, typer.Option("--unsafe-deactivate", min=0, help="Refusal-linked experts to deactivate (unsafe).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the pair sets and the bootstrap.")] = 0,
    threads: ThreadsOption = "auto",
    device: DeviceOption = "auto",
    dtype: DtypeOption = Dtype.auto,
    json: JsonOption = False,
    backend: BackendOption = BackendName.hf,
) -> None:
    """Detect safety experts on the organism, then compare refusal rates: baseline, safe steering, unsafe
    steering and a random-expert control; then steer counting answers between digits and words."""
    import torch
    from rich.console import Console

    from moeguard.demo import DemoSettings, run_demo
    from moeguard.experiment import rich_table
    from moeguard.outputs import check_output_folder

    check_output_folder(output)
    used = torch.get_num_threads()  # --threads was applied as the command line was parsed
    settings = DemoSettings(
        model=model,
        output=output,
        pairs=pairs,
        control_seeds=control_seeds,
        safe_activate=safe_activate,
        unsafe_activate=unsafe_activate,
        unsafe_deactivate=unsafe_deactivate,
        seed=seed,
        device=device,
        dtype=dtype.value,
        backend=backend.value,
    )
    err = Console(stderr=True)
    err.print(f"{used} CPU thread(s)", style="dim")
    result = run_demo(settings, on_phase=lambda text: err.print(text, style="dim"))
    if json:
        print_json(
            {
                "behaviours": {r.behaviour.name: r.to_dict() for r in result.results},
                "files": [str(p) for p in result.files],
                "seconds": round(result.seconds, 1),
            }
        )
        return
    console = Console()
    for behaviour in result.results:
        console.print(rich_table(behaviour.behaviour.title, behaviour.scores))
        for score in behaviour.baseline_scores:
            console.print(f"without steering: {score.metric} on {score.prompt_set} {100 * score.mean:.1f}%")
    for condition, pairs_ in result.examples.items():
        console.print(f"[bold]{condition}[/bold]")
        for prompt, answer in pairs_:
            console.print(f"  {prompt}\n    → {answer[:120]}", markup=False, highlight=False)
    console.print(f"artifacts in {output}/ ({result.seconds:.0f} s)")


def register(app: typer.Typer) -> None:
    app.command()(demo)
