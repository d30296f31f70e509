"""``moeguard lm-eval``: lm-eval stays out of the core import path; without the extra, one line and exit 2."""

from __future__ import annotations

import subprocess
import sys

from cli_helpers import error_line, run_cli


def test_core_and_cli_do_not_import_lm_eval():
    code = (
        "import sys; from moeguard.cli import _register_commands; _register_commands(); "
        "import moeguard, moeguard.eval, moeguard.eval.run, moeguard.eval.specs; "
        "assert 'lm_eval' not in sys.modules, 'lm_eval imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_without_the_extra_it_is_one_line(capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "lm_eval" else real(name, *a))
    result = run_cli(capsys, "lm-eval", "--model", "moeguard", "--tasks", "x")
    assert result.code == 2 and "pip install 'moeguard[lm-eval]'" in error_line(result)
