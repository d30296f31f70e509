"""Hub loading fails fast with one line when the hub cannot answer (no 20 s of retries)."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from moeguard.errors import MoeguardError
from moeguard.eval.benchmarks import load_benchmark
from moeguard.eval.benchmarks.hub import hub_problem


@pytest.fixture
def no_offline(monkeypatch):
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


def _never_called(*args, **kwargs):
    raise AssertionError("datasets.load_dataset must not be called when the probe fails")


def timed_error(source: str, **kwargs) -> tuple[str, float]:
    started = time.perf_counter()
    with pytest.raises(MoeguardError) as err:
        load_benchmark(source, **kwargs)
    elapsed = time.perf_counter() - started
    assert "\n" not in str(err.value)
    return str(err.value), elapsed


def test_refused_connection_fails_fast_without_calling_datasets(monkeypatch, no_offline):
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", _never_called)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    text, elapsed = timed_error("advbench")
    assert elapsed < 5
    assert "cannot reach the Hugging Face hub for walledai/AdvBench" in text
    assert "harmful_behaviors.csv" in text and "advbench:PATH" in text


def test_silent_endpoint_is_cut_off_by_the_timeout(monkeypatch, no_offline):
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", _never_called)
    with socket.socket() as server:  # accepts TCP connections (kernel backlog) but never answers HTTP
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        monkeypatch.setenv("MOEGUARD_HUB_TIMEOUT", "0.5")
        text, elapsed = timed_error("xstest")
    assert elapsed < 3 and "cannot reach" in text and "xstest_prompts.csv" in text


def test_an_answering_endpoint_counts_as_reachable(monkeypatch, no_offline):
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)  # answers 501
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        assert hub_problem(timeout=2) is None
    finally:
        thread.join(3)
        server.server_close()


def test_offline_switch_set_after_import_fails_fast_instead_of_going_online(monkeypatch):
    import datasets  # noqa: F401  (imported while online, as in a notebook)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    text, elapsed = timed_error("jailbreakbench")
    assert elapsed < 1 and "set HF_HUB_OFFLINE=1 before starting Python" in text


def test_offline_switch_reads_only_the_cache_and_fails_fast(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    code = (
        "import time\n"
        "import datasets\n"
        "from moeguard.errors import MoeguardError\n"
        "from moeguard.eval.benchmarks import load_benchmark\n"
        "started = time.perf_counter()\n"
        "try:\n    load_benchmark('jailbreakbench')\n"
        "except MoeguardError as err:\n    print(err)\n"
        "print(time.perf_counter() - started)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2, result.stdout + result.stderr
    assert "local datasets cache" in lines[0] and "harmful-behaviors.csv, benign-behaviors.csv" in lines[0]
    assert float(lines[1]) < 5


def test_this_machine_without_hub_fails_in_under_five_seconds(no_offline, monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    if hub_problem() is None:
        pytest.skip("the hub is reachable here; the offline path is covered by the other tests")
    text, elapsed = timed_error("sorrybench")
    assert elapsed < 5 and "cannot reach" in text


def test_unknown_hub_dataset_id_goes_through_the_same_probe(monkeypatch, no_offline):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    text, _ = timed_error("someone/some-dataset")
    assert "someone/some-dataset" in text


def test_benchmark_without_hub_copy_asks_for_a_path():
    text, _ = timed_error("faithfulness")
    assert "has no hub copy" in text
