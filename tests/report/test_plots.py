"""Report figures render on an Agg canvas and write PNGs."""

from __future__ import annotations

import sys

import pytest

from moeguard.eval.summary import Cell, summarise
from moeguard.report.plots import plot_conditions, plot_drift, plot_experts_grid

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def no_pyplot(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)


def test_conditions_chart_with_a_control(tmp_path):
    records = [
        {"condition": c, "jailbreak": "none", "seed": s, "index": i, "metrics": {"refusal": (i + s) % 2}}
        for c, seeds in (("baseline", [0]), ("random:x", [0, 1]))
        for s in seeds
        for i in range(6)
    ]
    rows = summarise(records, [Cell("baseline"), Cell("random:x", steering="x", control=True, experts=2)], resamples=20)
    assert plot_conditions(rows, tmp_path / "c.png").read_bytes()[:8] == PNG
    with pytest.raises(ValueError):
        plot_conditions([], tmp_path / "none.png")


def test_drift_and_grid(tmp_path):
    assert plot_drift([1, 3], [0.2, 0.1], [0.5, 0.8], tmp_path / "d.png").read_bytes()[:8] == PNG
    rows = [{"layer": "1", "expert": str(e), "risk_diff": str(0.1 * e - 0.2)} for e in range(5)]
    assert plot_experts_grid(rows, tmp_path / "g.png").read_bytes()[:8] == PNG
