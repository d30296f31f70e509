"""The ``moeguard`` command line: a thin typer layer over the library.

Each command group lives in its own module under ``moeguard.commands`` and registers itself on
``app``. Errors print one line to stderr and exit with code 2.
"""

from __future__ import annotations

import sys

import click
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


def fail(message: str) -> None:
    """Print one error line and exit 2."""
    print(f"moeguard: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app, turning every user error into one line and exit code 2."""
    _register_commands()
    try:
        app(args=argv, standalone_mode=False)
    except MoeguardError as err:
        fail(str(err))
    except click.exceptions.Abort:
        fail("aborted")
    except click.UsageError as err:
        hint = f" (see 'moeguard {err.ctx.command_path.split(' ', 1)[-1]} --help')" if err.ctx else ""
        fail(f"{err.format_message()}{hint}".replace("\n", " "))
    except click.exceptions.Exit as err:
        raise SystemExit(err.exit_code) from None
    except click.ClickException as err:
        fail(err.format_message().replace("\n", " "))
