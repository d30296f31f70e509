"""Every command and option explains itself: help text everywhere, argument names in usage, -h works."""

from __future__ import annotations

import pytest

from cli_helpers import run_cli


def all_commands():
    import typer.main

    from moeguard.cli import _register_commands, app

    _register_commands()
    root = typer.main.get_command(app)
    found = []

    def walk(command, path):
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, [*path, name])
        else:
            found.append((" ".join(path), command))

    walk(root, [])
    return found


COMMANDS = all_commands()


def test_every_command_is_found():
    names = {name for name, _ in COMMANDS}
    assert {
        "inspect",
        "generate",
        "capture",
        "detect",
        "demo",
        "finetune",
        "drift",
        "safemoe reference",
        "attack build",
        "organism train",
        "organism eval",
    } <= names


@pytest.mark.parametrize("name,command", COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_option_and_argument_has_help(name, command):
    assert command.help, f"{name} has no help text"
    for param in command.params:
        if param.name in ("help",):
            continue
        if param.param_type_name == "argument":
            assert param.metavar and param.metavar.strip("[]").isupper(), f"{name}: argument {param.name} metavar"
        else:
            assert getattr(param, "help", None), f"{name}: option {param.opts} has no help"


def test_short_help_flag_and_version(capsys):
    result = run_cli(capsys, "detect", "-h")
    assert result.code == 0 and "Usage: moeguard detect [OPTIONS] [MODEL]" in result.out
    version = run_cli(capsys, "--version")
    assert version.code == 0 and version.out.startswith("moeguard ")
    usage = run_cli(capsys, "safemoe", "reference", "-h")
    assert "[MODEL]" in usage.out and "{model}" not in usage.out


def test_running_the_cli_many_times_in_one_process_registers_each_command_once(capsys):
    """``main`` registers the command groups on its first call only: a process (a test session, a notebook)
    that runs the CLI hundreds of times must not rebuild a growing list of duplicate commands each time."""
    from moeguard.cli import app

    for _ in range(3):
        assert run_cli(capsys, "--version").code == 0
    counts = (len(app.registered_commands), len(app.registered_groups))
    for _ in range(3):
        assert run_cli(capsys, "--version").code == 0
    assert (len(app.registered_commands), len(app.registered_groups)) == counts
    names = [group.name for group in app.registered_groups]
    assert len(names) == len(set(names)), names
