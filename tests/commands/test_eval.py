"""``moeguard eval``: a small run end to end, and one-line errors (exit 2) before the model loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_helpers import error_line, run_cli
from moeguard.steer import SteeringSpec

FIXTURES = Path(__file__).parent.parent / "eval" / "fixtures"
XSTEST = FIXTURES / "xstest" / "xstest_prompts.csv"


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir):
    return tiny_model_dir("olmoe")


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "safe.json"
    SteeringSpec(activate=[(0, 1)]).save(path)
    return path


def test_eval_writes_the_run_folder_and_prints_the_table(model_dir, spec_file, tmp_path, capsys):
    out = tmp_path / "run"
    result = run_cli(
        capsys,
        "eval",
        model_dir,
        "--benchmark",
        XSTEST,
        "--steer",
        spec_file,
        "--control",
        "2",
        "--max-new-tokens",
        "3",
        "--batch-size",
        "3",
        "--bootstrap",
        "50",
        "--output",
        out,
    )
    assert result.code == 0, result.err
    assert "random:safe" in result.out and "over_refusal" in result.out
    assert str(out / "summary.csv") in result.out
    assert len((out / "samples.jsonl").read_text().splitlines()) == 4 * 3
    again = run_cli(
        capsys,
        "eval",
        model_dir,
        "--benchmark",
        XSTEST,
        "--steer",
        spec_file,
        "--control",
        "2",
        "--max-new-tokens",
        "3",
        "--batch-size",
        "3",
        "--bootstrap",
        "50",
        "--output",
        out,
    )
    assert again.code == 0 and "resumed: 12 samples" in again.out


@pytest.fixture
def no_model_loading(monkeypatch):
    import moeguard.models

    def refuse(*args, **kwargs):
        raise AssertionError("the model must not load before the inputs are checked")

    monkeypatch.setattr(moeguard.models, "load_model", refuse)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unknown-benchmark", "unknown benchmark 'no-such-set'"),
        ("wrong-schema", "match no known benchmark schema"),
        ("judge-not-a-model", "is not a model folder"),
        ("spec-other-model", "was detected on builtin:organism, not"),
        ("output-is-a-file", "is a file; pass a folder"),
        ("bad-jailbreak", "unknown jailbreak 'dan'"),
        ("limit", "--limit"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(model_dir, spec_file, tmp_path, capsys, no_model_loading, case, message):
    args = ["eval", model_dir, "--benchmark", str(XSTEST), "--output", str(tmp_path / "out")]
    if case == "unknown-benchmark":
        args[3] = "no-such-set"
    elif case == "wrong-schema":
        args[3] = str(FIXTURES / "wrong" / "harmful_prompts.csv")
    elif case == "judge-not-a-model":
        (tmp_path / "judge").mkdir()
        args += ["--judge", str(tmp_path / "judge")]
    elif case == "spec-other-model":
        SteeringSpec(activate=[(0, 1)], model="builtin:organism").save(spec_file)
        args += ["--steer", str(spec_file)]
    elif case == "output-is-a-file":
        (tmp_path / "out").write_text("not a folder")
    elif case == "bad-jailbreak":
        args += ["--jailbreak", "dan"]
    elif case == "limit":
        args += ["--limit", "0"]
    result = run_cli(capsys, *args)
    assert result.code == 2
    assert message in error_line(result)


def test_summary_json_names_the_judge(model_dir, tmp_path, capsys):
    out = tmp_path / "o"
    result = run_cli(
        capsys,
        "eval",
        model_dir,
        "--benchmark",
        XSTEST,
        "--judge",
        "organism",
        "--limit",
        "1",
        "--max-new-tokens",
        "2",
        "--bootstrap",
        "10",
        "--output",
        out,
    )
    assert result.code == 0, result.err
    assert json.loads((out / "summary.json").read_text())["judge"] == "organism"
