"""``--threads``: how many threads ``auto`` picks, and that every command taking the option applies it."""

from __future__ import annotations

import pytest
import torch
import typer

import moeguard.threads
from cli_helpers import run_cli
from moeguard.cli import _register_commands, app
from moeguard.errors import MoeguardError
from moeguard.threads import choose_threads


@pytest.mark.parametrize(("load", "expected"), [(0.2, 4), (1.4, 3), (2.6, 1), (9.0, 1)])
def test_auto_takes_the_cores_the_load_leaves_free(monkeypatch, load, expected):
    monkeypatch.setattr(moeguard.threads, "available_cores", lambda: 4)
    monkeypatch.setattr(moeguard.threads.os, "getloadavg", lambda: (load, 0.0, 0.0))
    assert choose_threads("auto") == expected
    assert choose_threads(None) == expected


def test_a_number_is_taken_as_given(monkeypatch):
    monkeypatch.setattr(moeguard.threads, "available_cores", lambda: 2)
    assert choose_threads("3") == 3 and choose_threads(1) == 1


@pytest.mark.parametrize(("value", "message"), [("0", "at least 1"), ("-2", "at least 1"), ("many", "number or auto")])
def test_bad_values_name_the_option(value, message):
    with pytest.raises(MoeguardError, match=message) as caught:
        choose_threads(value)
    assert caught.value.param == "threads"


#: ``organism train`` takes a plain thread count of its own (no ``auto``): training is bit-reproducible only for a
#: fixed count, so it is not the shared option.
OWN_THREADS = {("organism", "train")}


def _commands_with_threads() -> list[tuple[str, ...]]:
    """Every (sub)command path of the CLI that has the shared ``--threads`` option."""
    found: list[tuple[str, ...]] = []

    def walk(command, path: tuple[str, ...]) -> None:
        if hasattr(command, "commands"):  # a group (typer vendors its own click: no isinstance)
            for name, sub in command.commands.items():
                walk(sub, (*path, name))
        elif path not in OWN_THREADS and any("--threads" in getattr(p, "opts", ()) for p in command.params):
            found.append(path)

    _register_commands()
    walk(typer.main.get_command(app), ())
    return found


def test_the_heavy_commands_take_threads():
    commands = {" ".join(path) for path in _commands_with_threads()}
    expected = {"demo", "finetune", "detect", "eval", "validate", "attack experts", "organism eval"}
    assert expected <= commands, expected - commands


@pytest.mark.parametrize("path", _commands_with_threads(), ids=" ".join)
def test_every_command_applies_threads_and_a_run_keeps_it_to_itself(path, capsys, monkeypatch):
    applied: list[int] = []
    real = moeguard.threads.apply_threads
    monkeypatch.setattr(moeguard.threads, "apply_threads", lambda setting: applied.append(real(setting)) or applied[-1])
    before = torch.get_num_threads()
    # options are processed in the order given: --threads is applied before the bad --dtype stops the run
    result = run_cli(capsys, *path, "--threads", "3", "--dtype", "float8")
    assert result.code == 2 and "--dtype" in result.err
    assert applied == [3]
    assert torch.get_num_threads() == before  # run_cli restores it, as a process of its own would end


@pytest.mark.parametrize("path", _commands_with_threads(), ids=" ".join)
def test_a_bad_thread_count_is_one_line_before_any_work(path, capsys):
    result = run_cli(capsys, *path, "--threads", "0")
    assert result.code == 2
    assert "--threads must be at least 1" in result.err and "Traceback" not in result.err
