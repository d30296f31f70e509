"""``moeguard serve``: the server command line, specs checked before start, one-line errors."""

from __future__ import annotations

import json
import shlex

import pytest

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
    argv = serve_command("builtin:organism", steer=safe, specs=parse_named_specs([f"unsafe={unsafe}"]),
                         capture_dir=tmp_path / "cap", extra=["--port", "8123", "--tensor-parallel-size", "2"])
    assert argv[1:3] == ["-m", SERVER_MODULE]
    config = json.loads(argv[argv.index("--additional-config") + 1])["moeguard"]
    assert config == {"default_spec": str(safe.resolve()), "specs": {"unsafe": str(unsafe.resolve())},
                      "capture_dir": str((tmp_path / "cap").resolve())}
    assert argv[argv.index("--served-model-name") + 1] == "builtin:organism"
    assert argv[argv.index("--dtype") + 1] == "float32"  # the checkpoint's, as transformers loads it
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
