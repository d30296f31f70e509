"""Run the moeguard CLI in-process and collect exit code, stdout and stderr."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def exit_code_of(*args: str) -> int:
    """``moeguard ARGS`` in-process through the console entry point (which registers the commands); its exit code."""
    import torch

    from moeguard.cli import main

    threads = torch.get_num_threads()
    try:
        main([str(a) for a in args])
        return 0
    except SystemExit as stop:
        return int(stop.code or 0)
    finally:
        torch.set_num_threads(threads)  # --threads lasts one run, as in its own process


def run_cli(capsys, *args: str) -> CliResult:
    """``moeguard ARGS`` in-process; returns (code, stdout, stderr)."""
    capsys.readouterr()
    code = exit_code_of(*args)
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


def error_line(result: CliResult) -> str:
    """The single 'moeguard: error:' line of a failed run (asserts it is one line, no traceback)."""
    lines = [line for line in result.err.splitlines() if line.startswith("moeguard: error:")]
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    return lines[0]
