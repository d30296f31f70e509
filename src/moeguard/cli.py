"""The ``moeguard`` command line: a thin typer layer over the library.

Each command group lives in its own module under ``moeguard.commands`` and registers itself on
``app``. Errors print one line to stderr and exit with code 2.
"""

from __future__ import annotations

import sys

import typer

from moeguard.errors import MoeguardError

app = typer.Typer(
    name="moeguard",
    help="Expert-level control of Mixture-of-Experts language models (SteerMoE, SafeMoE).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _register_commands() -> None:
    import importlib
    import pkgutil

    import moeguard.commands as commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"moeguard.commands.{info.name}")
        module.register(app)


#: Library parameter names -> the CLI flags that set them (``MoeguardError.param``).
PARAMETER_FLAGS = {
    "n_activate": "--activate",
    "n_deactivate": "--deactivate",
    "min_stability": "--min-stability",
    "max_q": "--max-q",
    "bootstrap": "--bootstrap",
    "batch_size": "--batch-size",
    "seed": "--seed",
    "max_pairs": "--max-pairs",
    "temperature": "--temperature",
    "lam": "--lambda",
    "scope": "--scope",
    "schedule": "--schedule",
    "max_steps": "--max-steps",
    "top_k": "--top-k",
    "max_new_tokens": "--max-new-tokens",
    "control": "--control",
    "limit": "--limit",
}


def user_message(err: MoeguardError) -> str:
    """The error's message with its library parameter spelled as the CLI flag."""
    message = str(err)
    flag = PARAMETER_FLAGS.get(err.param or "")
    if flag and message.startswith(err.param or ""):
        message = flag + message[len(err.param or "") :]
    return message


def fail(message: str) -> None:
    """Print one error line and exit 2."""
    print(f"moeguard: error: {message}", file=sys.stderr)
    raise SystemExit(2)


# typer vendors its own click; take its exception classes from its public ones.
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app, turning every user error into one line and exit code 2."""
    _register_commands()
    try:
        app(args=argv, standalone_mode=False)
    except MoeguardError as err:
        fail(user_message(err))
    except typer.Abort:
        fail("aborted")
    except _UsageError as err:
        if err.ctx is not None and "NoArgsIsHelp" in type(err).__name__:
            print(err.ctx.get_help())
            raise SystemExit(2) from None
        hint = f" (see '{err.ctx.command_path} --help')" if err.ctx is not None else ""
        fail(f"{err.format_message()}{hint}".replace("\n", " "))
    except _ClickException as err:
        fail(err.format_message().replace("\n", " "))
