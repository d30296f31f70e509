"""``moeguard demo``: SteerMoE end to end on the built-in organism (CPU, no download)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from moeguard.commands import BackendName, BackendOption


def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for tables, heatmaps, specs, report.")] = Path(
        "moeguard-demo"
    ),
    model: Annotated[str, typer.Option("--model", help="Model to run on (default: the built-in organism).")] = (
        "builtin:organism"
    ),
    pairs: Annotated[int, typer.Option("--pairs", min=10, help="Contrast pairs per detection.")] = 200,
    control_seeds: Annotated[int, typer.Option("--control-seeds", min=2, help="Random-control seeds.")] = 5,
    safe_activate: Annotated[int | None, typer.Option("--safe-activate", min=1)] = None,
    unsafe_activate: Annotated[int | None, typer.Option("--unsafe-activate", min=0)] = None,
    unsafe_deactivate: Annotated[int | None, typer.Option("--unsafe-deactivate", min=0)] = None,
    seed: Annotated[int, typer.Option("--seed", min=0)] = 0,
    backend: BackendOption = BackendName.hf,
) -> None:
    """Detect safety experts on the organism, then compare refusal rates: baseline, safe steering, unsafe
    steering and a random-expert control; then steer counting answers between digits and words."""
    from rich.console import Console
    from rich.table import Table

    from moeguard.demo import DemoSettings, run_demo, table_grid

    settings = DemoSettings(model=model, output=output, pairs=pairs, control_seeds=control_seeds,
                            safe_activate=safe_activate, unsafe_activate=unsafe_activate,
                            unsafe_deactivate=unsafe_deactivate, seed=seed, backend=backend.value)
    result = run_demo(settings)
    console = Console()
    for title, scores in (("Refusal rate (%)", result.safety), ("Counting answer style (%)", result.digits)):
        columns, rows = table_grid(scores)
        table = Table(title=title)
        table.add_column("condition")
        table.add_column("experts", justify="right")
        for column in columns:
            table.add_column(column, justify="right")
        for condition, experts, cells in rows:
            table.add_row(condition, str(experts), *cells)
        console.print(table)
    for condition, pairs_ in result.examples.items():
        console.print(f"[bold]{condition}[/bold]")
        for prompt, answer in pairs_:
            console.print(f"  {prompt}\n    → {answer[:120]}", markup=False, highlight=False)
    console.print(f"artifacts in {output}/ ({result.seconds:.0f} s)")


def register(app: typer.Typer) -> None:
    app.command()(demo)
