"""The ``moeguard`` command line: a thin typer layer over the library.

Each command group lives in its own module under ``moeguard.commands`` and registers itself on
``app``. Errors print one line to stderr and exit with code 2.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import typer

from moeguard.errors import MoeguardError

app = typer.Typer(
    name="moeguard",
    help="Expert-level control of Mixture-of-Experts language models (SteerMoE, SafeMoE).",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        from moeguard import __version__

        print(f"moeguard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Print moeguard's version and exit."
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show the libraries' own progress bars and logs (transformers, Trainer)."
    ),
) -> None:
    """Expert-level control of Mixture-of-Experts language models (SteerMoE, SafeMoE)."""
    global _VERBOSE
    _VERBOSE = verbose
    quiet_libraries(not verbose)


_VERBOSE = False


def is_verbose() -> bool:
    """Whether ``--verbose`` was given (libraries keep their own console output)."""
    return _VERBOSE


def quiet_libraries(quiet: bool = True) -> None:
    """Keep transformers' "Loading weights" bars and info logs off the terminal unless asked for."""
    import os

    if "transformers" not in sys.modules:  # before the import, the environment is enough (and cheap)
        os.environ["TRANSFORMERS_VERBOSITY"] = "error" if quiet else "info"
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1" if quiet else "0"
        return
    from transformers.utils import logging as hf_logging

    if quiet:
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    else:
        hf_logging.set_verbosity_info()
        hf_logging.enable_progress_bar()


@functools.cache
def _register_commands() -> None:
    """Add every command group to ``app``, once per process (``main`` may run many times in one process)."""
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
    "test": "--test",
    "permutations": "--permutations",
    "max_new_tokens": "--max-new-tokens",
    "control": "--control",
    "limit": "--limit",
    "random_sets": "--random-sets",
    "doses": "--doses",
    "direction": "--direction",
    "resamples": "--resamples",
    "splits": "--splits",
    "metric": "--metric",
    "target": "--target",
    "beam": "--beam",
    "max_experts": "--max-experts",
    "candidates": "--candidates",
    "search_limit": "--search-limit",
    "heldout_limit": "--heldout-limit",
    "heldout_max_new_tokens": "--heldout-max-new-tokens",
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
_UsageError: Any = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
_ClickException: Any = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app, turning every user error into one line and exit code 2."""
    from moeguard.artifacts import set_command_line

    _register_commands()
    set_command_line(list(sys.argv[1:] if argv is None else argv))
    try:
        app(args=argv, standalone_mode=False, prog_name="moeguard")
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


if __name__ == "__main__":
    main()
