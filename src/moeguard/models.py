"""Loading models by path, hub name or ``builtin:`` name, with one-line errors."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from moeguard.errors import MoeguardError

BUILTIN_PREFIX = "builtin:"
_BUILTIN_MODELS = {"organism": "organism/weights"}


def resolve_model_path(name: str) -> str:
    """Turn ``builtin:organism`` into the shipped folder; check local paths exist."""
    if name.startswith(BUILTIN_PREFIX):
        key = name[len(BUILTIN_PREFIX) :]
        if key not in _BUILTIN_MODELS:
            available = ", ".join(BUILTIN_PREFIX + k for k in _BUILTIN_MODELS)
            raise MoeguardError(f"unknown built-in model {name!r}; available: {available}")
        path = Path(str(resources.files("moeguard") / _BUILTIN_MODELS[key]))
        if not (path / "config.json").is_file():
            raise MoeguardError(
                f"the built-in model {name} is not installed at {path}; run 'moeguard organism train --output {path}'"
            )
        return str(path)
    path = Path(name).expanduser()
    looks_local = name.startswith((".", "/", "~")) or path.exists() or name.count("/") != 1
    if looks_local:
        if not path.exists():
            raise MoeguardError(f"model path {name} does not exist; pass a folder with config.json or builtin:organism")
        if not (path / "config.json").is_file():
            raise MoeguardError(f"{name} has no config.json; pass a folder written by save_pretrained")
    return str(path) if looks_local else name


def load_model(
    name: str,
    trust_remote_code: bool = False,
    dtype: str | None = None,
    device_map: str | None = None,
):
    """Load ``(model, tokenizer)`` in eval mode. ``name``: local folder, hub id, or ``builtin:organism``.

    ``trust_remote_code`` stays False unless the caller asks for it.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model_path(name)
    kwargs = {"trust_remote_code": trust_remote_code}
    if dtype is not None:
        if not hasattr(torch, dtype):
            raise MoeguardError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16")
        kwargs["dtype"] = getattr(torch, dtype)
    if device_map is not None:
        kwargs["device_map"] = device_map
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MoeguardError(f"could not load model {name!r}: {first}") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, TypeError) as err:
        raise MoeguardError(f"could not load a tokenizer for {name!r}: {str(err).strip().splitlines()[0]}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.eval()
    return model, tokenizer
