"""``moeguard organism train|eval``: build the model organism and measure its behaviour."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from moeguard.commands import MODEL_HELP, DeviceOption, Dtype, DtypeOption, JsonOption, ThreadsOption, print_json

organism_app = typer.Typer(
    help="The built-in model organism: a small OLMoE-architecture chat model trained on CPU by moeguard.",
    no_args_is_help=True,
)


def _names(text: str) -> tuple[str, ...]:
    """The names of a comma list ("counting, document" -> ("counting", "document"))."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


@organism_app.command()
def train(
    seed: Annotated[int, typer.Option("--seed", help="Seed of corpus, tokenizer, init and data order.")] = 0,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for model, tokenizer and card.")] = Path(
        "organism"
    ),
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="Optimiser steps (default: recipe's).")] = None,
    check: Annotated[bool, typer.Option("--check/--no-check", help="Measure behaviour and SteerMoE after.")] = True,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="CPU threads (default: the recipe's, 1).")
    ] = None,
    surface_share: Annotated[
        float | None,
        typer.Option(
            "--surface-share",
            min=0.0,
            max=1.0,
            help="Share of training requests rephrased (role-play, context, politeness, indirect, typos); "
            "default: the recipe's, 0.",
        ),
    ] = None,
    surface_kinds: Annotated[
        str | None,
        typer.Option(
            "--surface-kinds",
            help="Comma list of the conversation kinds that get surfaces (harmful, benign, lookalike, document, "
            "counting, fact); default: all.",
        ),
    ] = None,
    request_surfaces: Annotated[
        str | None,
        typer.Option(
            "--request-surfaces",
            help="Comma list of the surfaces that rephrase requests (roleplay, context, polite, indirect, typo); "
            "default: all.",
        ),
    ] = None,
) -> None:
    """Train the organism from scratch (tokenizer + model) and save it with a model card into OUTPUT."""
    from moeguard.organism.card import write_model_card
    from moeguard.organism.train import OrganismConfig, train_organism
    from moeguard.progress import progress_bar

    config = OrganismConfig(seed=seed)
    if surface_kinds is not None:
        config = replace(config, surface_kinds=_names(surface_kinds))
    if request_surfaces is not None:
        config = replace(config, request_surfaces=_names(request_surfaces))
    if threads is not None:
        config.threads = threads
    if steps is not None:
        config.steps = steps
    if surface_share is not None:
        config.surface_share = surface_share
    from moeguard.outputs import check_output_folder, check_output_is_new_or_empty

    check_output_folder(output)
    check_output_is_new_or_empty(output, hint="a new folder for the organism")
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
        metrics = _measure(str(output), steering=True, device="auto", dtype=Dtype.auto)
        _print_metrics(metrics)
    write_model_card(output, config, result, metrics)


def _measure(model_name: str, steering: bool, device: str, dtype: Dtype, task: str | None = None) -> dict:
    from moeguard.commands import load
    from moeguard.organism.check import measure, task_accuracy_of

    model, tokenizer = load(model_name, False, device, dtype)
    metrics = measure(model, tokenizer, model_name, steering=steering, progress=True)
    if task is not None:
        metrics["task"] = task_accuracy_of(model, tokenizer, task)
    return metrics


def _print_metrics(metrics: dict) -> None:
    from rich.console import Console

    from moeguard.experiment import rich_table
    from moeguard.organism.check import scores_from

    console = Console()
    for behaviour in metrics["behaviours"].values():
        console.print(rich_table(behaviour["title"], scores_from(behaviour["scores"])))
        for score in scores_from(behaviour["baseline_scores"]):
            console.print(f"without steering: {score.metric} on {score.prompt_set} {100 * score.mean:.1f}%")
    if "task" in metrics:
        task = metrics["task"]
        console.print(f"task {task['task']}: accuracy {100 * task['accuracy']:.1f}% on {task['n']} held-out items")


@organism_app.command("eval")
def evaluate(
    model: Annotated[str, typer.Argument(help=MODEL_HELP, metavar="MODEL")] = "builtin:organism",
    steering: Annotated[
        bool,
        typer.Option("--steering/--no-steering", help="Also run the SteerMoE check (detect, steer, random control)."),
    ] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write metrics.json into this folder.")] = None,
    update_card: Annotated[
        bool,
        typer.Option("--update-card", help="Rewrite MODEL's own README.md and metrics.json (a trained folder)."),
    ] = False,
    task: Annotated[
        str | None, typer.Option("--task", help="Also measure a fine-tuning task's accuracy (successor, addition).")
    ] = None,
    device: DeviceOption = "auto",
    dtype: DtypeOption = Dtype.auto,
    threads: ThreadsOption = "auto",
    json: JsonOption = False,
) -> None:
    """Held-out behaviour of MODEL (refusal, answer style) and, with --steering, the demo's SteerMoE experiment."""
    from moeguard.artifacts import run_metadata, write_json_atomic
    from moeguard.errors import MoeguardError
    from moeguard.models import resolve_model_path
    from moeguard.outputs import check_output_folder

    if output is not None:
        check_output_folder(output)
    if task is not None:
        from moeguard.organism.tasks import check_task

        check_task(task)
    folder = Path(resolve_model_path(model))
    if update_card and not (steering and (folder / "organism.json").is_file()):
        raise MoeguardError("--update-card needs --steering and an organism folder with organism.json")
    metrics = _measure(model, steering, device, dtype, task)
    if json:
        print_json(metrics)
    else:
        _print_metrics(metrics)
    if update_card:
        from moeguard.organism.card import refresh_card

        print(refresh_card(folder, metrics))
    if output is not None:
        path = write_json_atomic(Path(output) / "metrics.json", {"metadata": run_metadata(model), **metrics})
        print(path)


def register(app: typer.Typer) -> None:
    app.add_typer(organism_app, name="organism")
