"""``moeguard serve``: the server command line, specs checked before start, one-line errors."""

from __future__ import annotations

import json
import shlex

import pytest
import torch

from cli_helpers import error_line, run_cli
from moeguard.backends.vllm.server import SERVER_MODULE, parse_named_specs, serve_command
from moeguard.errors import MoeguardError
from moeguard.steer import SteeringSpec
from vllm_helpers import HAS_VLLM, organism_specs


@pytest.fixture
def specs(tmp_path):
    unsafe, safe = organism_specs()
    return unsafe.save(tmp_path / "unsafe.json"), safe.save(tmp_path / "safe.json")


def test_serve_command_switches_the_backend_on_with_the_specs(specs, tmp_path, monkeypatch):
    monkeypatch.setenv("MOEGUARD_CACHE_DIR", str(tmp_path / "cache"))
    unsafe, safe = specs
    argv = serve_command(
        "builtin:organism",
        steer=safe,
        specs=parse_named_specs([f"unsafe={unsafe}"]),
        capture_dir=tmp_path / "cap",
        extra=["--port", "8123", "--tensor-parallel-size", "2"],
    )
    assert argv[1:3] == ["-m", SERVER_MODULE]
    config = json.loads(argv[argv.index("--additional-config") + 1])["moeguard"]
    assert config == {
        "default_spec": str(safe.resolve()),
        "specs": {"unsafe": str(unsafe.resolve())},
        "capture_dir": str((tmp_path / "cap").resolve()),
    }
    assert argv[argv.index("--served-model-name") + 1] == "builtin:organism"
    assert argv[argv.index("--dtype") + 1] == "float32"  # the checkpoint's, as transformers loads it
    assert argv[argv.index("--logits-processors") + 1] == "moeguard.backends.vllm.admission:SpecAdmission"
    assert "--no-enable-prefix-caching" in argv and argv[-4:] == ["--port", "8123", "--tensor-parallel-size", "2"]
    assert argv[argv.index("--model") + 1].startswith(str(tmp_path / "cache"))  # the untied organism


def test_specs_for_another_model_and_foreign_flags_are_refused(tmp_path):
    bad = SteeringSpec(deactivate=[(7, 0)]).save(tmp_path / "bad.json")
    with pytest.raises(MoeguardError, match="spec 'default' .* steering layer 7 is out of range"):
        serve_command("builtin:organism", steer=bad)
    with pytest.raises(MoeguardError, match="sets --additional-config itself"):
        serve_command("builtin:organism", extra=["--additional-config", "{}"])
    with pytest.raises(MoeguardError, match="NAME=FILE"):
        parse_named_specs(["unsafe"])


def test_serve_cli(specs, capsys):
    result = run_cli(capsys, "serve", "builtin:organism", "--steer", specs[1], "--dry-run", "--port", "8123")
    if not HAS_VLLM:
        assert result.code == 2 and 'pip install "moeguard[vllm]"' in error_line(result)
        return
    assert result.code == 0
    argv = shlex.split(result.out.strip())
    assert SERVER_MODULE in argv and argv[-2:] == ["--port", "8123"]


@pytest.mark.slow
@pytest.mark.vllm
@pytest.mark.skipif(not HAS_VLLM, reason="needs vLLM")
def test_the_server_steers_each_request_with_its_spec(specs, tmp_path):
    """A real ``moeguard serve`` process: per-request specs through vllm_xargs (name, JSON text, "none", the
    default) give the HF path's greedy text; a captured request's routing file equals the HF recorder's."""
    import os
    import signal
    import socket
    import subprocess
    import time
    import urllib.error
    import urllib.request

    from moeguard.backends import get_backend
    from moeguard.builtin import resolve
    from moeguard.chat import encode_texts, format_prompt
    from moeguard.routing import RoutingRecorder, RoutingTrace

    unsafe_file, safe_file = specs
    unsafe, safe = organism_specs()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}
    command = [
        "moeguard",
        "serve",
        "builtin:organism",
        "--steer",
        str(safe_file),
        "--spec",
        f"unsafe={unsafe_file}",
        "--capture-dir",
        str(tmp_path / "cap"),
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        "--enforce-eager",
        "--max-model-len",
        "256",
    ]
    server = subprocess.Popen(
        [os.path.join(os.path.dirname(os.sys.executable), command[0]), *command[1:]],
        env=env,
        stdout=open(tmp_path / "server.log", "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 600
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            assert time.time() < deadline, "the server did not start"
            time.sleep(2)
        hf = get_backend("hf").load("builtin:organism")
        prompts = resolve("prompts", "organism-heldout-harmful", n=4, seed=0)
        ids = encode_texts(hf.tokenizer, [format_prompt(hf.tokenizer, p) for p in prompts])

        def complete(xargs):
            body = {
                "model": "builtin:organism",
                "prompt": ids,
                "max_tokens": 32,
                "temperature": 0.0,
                "skip_special_tokens": True,
                "vllm_xargs": xargs,
            }
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/completions",
                json.dumps(body).encode(),
                {"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=300) as reply:
                choices = sorted(json.loads(reply.read())["choices"], key=lambda c: c["index"])
            return [c["text"].strip() for c in choices]

        assert complete({"moeguard_steer": "unsafe", "moeguard_capture": "u"}) == hf.generate(prompts, 32, steer=unsafe)
        assert complete({"moeguard_steer": json.dumps(unsafe.to_dict())}) == hf.generate(prompts, 32, steer=unsafe)
        assert complete({}) == hf.generate(prompts, 32, steer=safe)  # the server's default spec
        assert complete({"moeguard_steer": "none"}) == hf.generate(prompts, 32)
        bad = {"moeguard_steer": json.dumps({"deactivate": [[9, 0]]})}
        try:
            complete(bad)
            raise AssertionError("a spec for another model was accepted")
        except urllib.error.HTTPError as err:
            assert err.code == 400 and "steering layer 9 is out of range" in err.read().decode()
        assert complete({"moeguard_steer": "none"}) == hf.generate(prompts, 32)  # the server still serves
        names = ["u", "u-1", "u-2", "u-3"]  # one batched request: its prompts share the tag
        deadline = time.time() + 60
        while len(list((tmp_path / "cap").glob("u*.safetensors"))) < 4 and time.time() < deadline:
            complete({"moeguard_steer": "none"})  # the worker writes finished requests at its next step
        assert sorted(p.stem for p in (tmp_path / "cap").glob("*.safetensors")) == names
        for name in names:
            trace = RoutingTrace.load(tmp_path / "cap" / f"{name}.safetensors")
            recorder = RoutingRecorder(hf.shape, counts=False, traces=True)
            with unsafe.apply(hf.shape), recorder:
                recorder.run(torch.tensor([trace.input_ids.tolist()]))
            assert torch.equal(trace.indices.sort(-1)[0], recorder.trace().indices.sort(-1)[0])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
