"""Every bad input of every command: one line, exit code 2, no traceback, caught before the model loads."""

from __future__ import annotations

import pytest
from bad_inputs import CASES, materialise

from cli_helpers import error_line, run_cli


def test_enough_cases_across_commands():
    assert len(CASES) >= 40
    assert len({case.args[0] for case in CASES}) >= 10


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_exit_2(case, capsys, tmp_path, tiny_model_dir, monkeypatch):
    if case.without_vllm:
        from vllm_helpers import HAS_VLLM

        if HAS_VLLM:
            pytest.skip("vLLM is installed here")
    model = tiny_model_dir("olmoe")
    if case.before_load:
        import moeguard.models

        def refuse(*args, **kwargs):
            raise AssertionError(f"{case.name}: the model was loaded before the bad input was reported")

        monkeypatch.setattr(moeguard.models, "load_model", refuse)
    result = run_cli(capsys, *materialise(case, tmp_path, model))
    assert result.code == 2, (case.name, result.err[-500:])
    line = error_line(result)
    assert case.fragment in line, (case.name, line)
    assert "Traceback" not in result.err and "Traceback" not in result.out
