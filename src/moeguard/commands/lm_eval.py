"""``moeguard lm-eval ARGS``: lm-evaluation-harness's CLI with the steered model type ``moeguard`` registered."""

from __future__ import annotations

import importlib.util

import typer

from moeguard.errors import MoeguardError


def lm_eval_command(ctx: typer.Context) -> None:
    """Run lm-eval with --model moeguard available (needs moeguard[lm-eval]); every argument goes to lm-eval.

    Example: moeguard lm-eval --model moeguard --model_args pretrained=PATH,steer=spec.json --tasks hellaswag
    (model_args: those of --model hf, plus steer=SPEC and steer_random_seed=N for the random control).
    """
    if importlib.util.find_spec("lm_eval") is None:
        raise MoeguardError("lm-eval is not installed; pip install 'moeguard[lm-eval]'")
    from moeguard.eval.lm_harness import run_cli

    run_cli(list(ctx.args))


def register(app: typer.Typer) -> None:
    app.command(
        "lm-eval",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
        add_help_option=False,
    )(lm_eval_command)
