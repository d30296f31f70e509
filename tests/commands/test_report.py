"""``moeguard report``: prints what it found in each folder; bad folders are one line, exit 2."""

from __future__ import annotations

from cli_helpers import error_line, run_cli
from moeguard.eval.summary import Cell, summarise, write_summary


def test_report_command(tmp_path, capsys):
    folder = tmp_path / "eval"
    records = [
        {"condition": "baseline", "jailbreak": "none", "seed": 0, "index": i, "metrics": {"refusal": 1}}
        for i in range(3)
    ]
    write_summary(summarise(records, [Cell("baseline")], resamples=10), folder, {"model": "m"})
    result = run_cli(capsys, "report", folder, "--output", tmp_path / "r.md")
    assert result.code == 0, result.err
    assert f"{folder}: eval" in result.out and (tmp_path / "r.md").is_file()
    missing = run_cli(capsys, "report", tmp_path / "nope", "--output", tmp_path / "r.md")
    assert missing.code == 2 and "does not exist" in error_line(missing)
