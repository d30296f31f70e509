"""moeguard report pages from detect, eval and drift folders (figures on an Agg canvas, no pyplot)."""

from __future__ import annotations

import csv
import json
import sys

import pytest

from moeguard.errors import MoeguardError
from moeguard.eval.summary import Cell, summarise, write_summary
from moeguard.report.page import build_report

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def no_pyplot(monkeypatch):
    """Importing pyplot fails inside these tests: the report must draw on its own canvas."""
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)


def write_rows(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture
def detect_dir(tmp_path):
    folder = tmp_path / "detect"
    folder.mkdir()
    rows = [
        (layer, e, 0.5, 0.2, round(0.3 - 0.1 * e + 0.01 * layer, 3), 0.01, 0.001, 0.9)
        for layer in range(2)
        for e in range(4)
    ]
    rows.sort(key=lambda r: -abs(r[4]))
    write_rows(
        folder / "experts.csv",
        ["layer", "expert", "rate_a", "rate_b", "risk_diff", "p_value", "q_value", "stability"],
        rows,
    )
    (folder / "spec.json").write_text(json.dumps({"activate": [[1, 0]], "deactivate": [[0, 3]]}))
    (folder / "meta.json").write_text(json.dumps({"model": "tiny", "pairs": 12, "tokens_a": 30, "tokens_b": 40}))
    return folder


@pytest.fixture
def eval_dir(tmp_path):
    folder = tmp_path / "eval"
    records = [
        {"condition": c, "jailbreak": "none", "seed": 0, "index": i, "metrics": {"refusal": v}}
        for c, values in (("baseline", [1, 1, 1, 0]), ("safe", [1, 1, 1, 1]))
        for i, v in enumerate(values)
    ]
    rows = summarise(records, [Cell("baseline"), Cell("safe", steering="safe", experts=2)], resamples=50)
    write_summary(rows, folder, {"model": "tiny", "benchmark": "bench.csv", "judge": "refusal", "items": 4})
    return folder


@pytest.fixture
def drift_dir(tmp_path):
    folder = tmp_path / "drift"
    folder.mkdir()
    write_rows(folder / "drift.csv", ["layer", "kl", "jaccard"], [(0, 0.1, 0.9), (1, 0.25, 0.6)])
    (folder / "drift.json").write_text(
        json.dumps({"mean_kl": 0.175, "total_kl": 0.35, "mean_jaccard": 0.75, "temperature": 0.1})
    )
    return folder


def test_one_page_with_every_kind_of_run(detect_dir, eval_dir, drift_dir, tmp_path):
    out = tmp_path / "pages" / "report.md"
    result = build_report([detect_dir, eval_dir, drift_dir], out, top=3)
    page = out.read_text()
    assert result.found == {str(detect_dir): ["detect"], str(eval_dir): ["eval"], str(drift_dir): ["drift"]}
    assert page.index("## Detection") < page.index("## Eval") < page.index("## Routing drift")
    detection = page[page.index("## Detection") : page.index("## Eval")]
    assert detection.count("\n| 0 |") + detection.count("\n| 1 |") == 3  # top 3 experts
    assert "| 1 | 0 | 0.500 | 0.200 | +0.310 | 0.001 | 0.90 | on |" in detection  # the activated expert
    assert "1 activated, 1 deactivated" in detection
    assert "| safe | 2 | 4 | 100.0 [100.0, 100.0] |" in page and "+25.0 [" in page
    assert "| 1 | 0.25 | 0.600 |" in page and "mean_kl 0.175" in page
    assert len(result.figures) == 3
    for figure in result.figures:
        assert figure.parent == tmp_path / "pages" / "report_files" and figure.read_bytes()[:8] == PNG
        assert f"](report_files/{figure.name})" in page


def test_existing_heatmap_is_copied(detect_dir, tmp_path):
    (detect_dir / "heatmap.png").write_bytes(PNG + b"the detect run's own heatmap")
    result = build_report([detect_dir], tmp_path / "r.md")
    assert result.figures[0].read_bytes().endswith(b"the detect run's own heatmap")


@pytest.mark.parametrize("case", ["missing", "empty", "output-is-folder", "bad-csv"])
def test_bad_input_is_one_line(tmp_path, detect_dir, case):
    folders, out = [detect_dir], tmp_path / "r.md"
    if case == "missing":
        folders = [tmp_path / "nope"]
    elif case == "empty":
        (tmp_path / "empty").mkdir()
        folders = [tmp_path / "empty"]
    elif case == "output-is-folder":
        out = tmp_path
    elif case == "bad-csv":
        write_rows(detect_dir / "experts.csv", ["layer", "expert"], [(0, 1)])
    with pytest.raises(MoeguardError) as err:
        build_report(folders, out)
    assert "\n" not in str(err.value)
