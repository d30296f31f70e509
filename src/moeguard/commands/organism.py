"""``moeguard organism train|eval``: build the model organism and measure its behaviour."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

organism_app = typer.Typer(
    help="The built-in model organism: a small OLMoE-architecture chat model trained on CPU by moeguard.",
    no_args_is_help=True,
)


@organism_app.command()
def train(
    seed: Annotated[int, typer.Option("--seed", help="Seed of corpus, tokenizer, init and data order.")] = 0,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for model, tokenizer and card.")
    ] = Path("organism"),
    steps: Annotated[
        int | None, typer.Option("--steps", min=1, help="Optimiser steps (default: recipe's).")
    ] = None,
    check: Annotated[
        bool, typer.Option("--check/--no-check", help="Measure behaviour and SteerMoE after.")
    ] = True,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="CPU threads (default: the recipe's, 1).")
    ] = None,
) -> None:
    """Train the organism from scratch (tokenizer + model) and save it with a model card into OUTPUT."""
    from moeguard.errors import MoeguardError
    from moeguard.organism.train import OrganismConfig, train_organism, write_model_card
    from moeguard.progress import progress_bar

    config = OrganismConfig(seed=seed)
    if threads is not None:
        config.threads = threads
    if steps is not None:
        config.steps = steps
    if output.exists() and not output.is_dir():
        raise MoeguardError(f"--output {output} is a file; pass a folder")
    with progress_bar() as bar:
        task = bar.add_task("preparing corpus and tokenizer", total=config.steps)

        def report(step: int, loss: float) -> None:
            bar.update(task, completed=step, description=f"training (loss {loss:.3f})")

        result = train_organism(config, output, progress=report)
    print(
        f"trained {result.parameters / 1e6:.2f}M parameters in {result.seconds / 60:.1f} min "
        f"(final loss {result.final_loss:.3f}) -> {output}"
    )
    metrics = None
    if check:
        metrics = _measure(str(output), steering=True)
        _print_metrics(metrics)
    write_model_card(output, config, result, metrics)


def _measure(model_name: str, steering: bool) -> dict:
    from moeguard.models import load_model
    from moeguard.organism.check import behaviour, steering_check

    model, tokenizer = load_model(model_name)
    metrics = {"behaviour": behaviour(model, tokenizer)}
    if steering:
        metrics["steering"] = steering_check(model, tokenizer, model_name=model_name)
    return metrics


def _print_metrics(metrics: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="held-out behaviour (greedy, offline refusal judge)")
    table.add_column("prompts")
    table.add_column("n", justify="right")
    table.add_column("refusal rate", justify="right")
    table.add_column("answer rate", justify="right")
    for name, row in metrics["behaviour"].items():
        table.add_row(name, str(row["n"]), f"{row['refusal_rate']:.0%}", f"{row['answer_rate']:.0%}")
    console = Console()
    console.print(table)
    steering = metrics.get("steering")
    if not steering:
        return
    table = Table(title=f"SteerMoE on held-out harmful prompts ({steering['experts_total']} experts)")
    table.add_column("steering")
    table.add_column("experts", justify="right")
    table.add_column("refusal rate", justify="right")
    table.add_column("compliant answers", justify="right")
    sd = steering["random_refusal_sd"]
    table.add_row(
        "none",
        "0",
        f"{steering['baseline']['refusal_rate']:.0%}",
        f"{steering['baseline']['compliance_rate']:.0%}",
    )
    table.add_row(
        "unsafe (detected)",
        f"+{steering['n_activate']} / -{steering['n_deactivate']}",
        f"{steering['unsafe']['refusal_rate']:.0%}",
        f"{steering['unsafe']['compliance_rate']:.0%}",
    )
    table.add_row(
        f"random control x{len(steering['random_refusal_rates'])}",
        f"+{steering['n_activate']} / -{steering['n_deactivate']}",
        f"{steering['random_refusal_mean']:.0%} ± {sd:.0%}",
        "",
    )
    table.add_row(
        "safe (detected)",
        f"+{steering['n_safe_activate']}",
        f"{steering['safe']['refusal_rate']:.0%}",
        f"{steering['safe']['compliance_rate']:.0%}",
    )
    console.print(table)
    table = Table(title="digits-vs-words steering on uncued held-out counting prompts")
    table.add_column("steering")
    table.add_column("digits", justify="right")
    table.add_column("words", justify="right")
    table.add_column("example")
    for name, row in steering["counting"].items():
        example = row["examples"][0]
        table.add_row(
            name,
            f"{row['shares']['digits']:.0%}",
            f"{row['shares']['words']:.0%}",
            f"{example['prompt']} -> {example['output']}",
        )
    console.print(table)


@organism_app.command("eval")
def evaluate(
    model: Annotated[
        str, typer.Argument(help="Local folder, hub id, or builtin:organism.")
    ] = "builtin:organism",
    steering: Annotated[
        bool,
        typer.Option(
            "--steering/--no-steering", help="Also run the SteerMoE check (detect, steer, random control)."
        ),
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write metrics.json into this folder.")
    ] = None,
) -> None:
    """Refusal rate on held-out harmful prompts and answer rates on held-out benign prompts and look-alikes."""
    from moeguard.artifacts import run_metadata, write_json_atomic

    metrics = _measure(model, steering)
    _print_metrics(metrics)
    if output is not None:
        path = write_json_atomic(Path(output) / "metrics.json", {"metadata": run_metadata(model), **metrics})
        print(path)


def register(app: typer.Typer) -> None:
    app.add_typer(organism_app, name="organism")
