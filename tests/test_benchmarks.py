"""The benchmark scripts still run against the current API (they are not imported by anything else, so they rot
silently: ``safemoe_overhead.py`` imported a function the routing core had removed)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if not p.name.startswith("_"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_every_benchmark_imports_and_has_a_main(script, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"benchmark_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(getattr(module, "main", None)), script.name


@pytest.mark.slow
def test_safemoe_overhead_quick_run_prints_its_ratios():
    run = subprocess.run(
        [sys.executable, str(BENCHMARKS / "safemoe_overhead.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "step schedule (L_route every step) / plain SFT step" in run.stdout
    assert "epoch schedule" in run.stdout
