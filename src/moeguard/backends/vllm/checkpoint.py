"""Model folders vLLM can load: ``builtin:`` names resolved, tied embeddings written out.

vLLM's model classes for some families (OLMoE among them) always build a separate ``lm_head`` and load it
from the checkpoint, ignoring ``tie_word_embeddings``; a checkpoint saved with tied embeddings (the model
organism) has no ``lm_head.weight`` and would load with an uninitialised head. :func:`write_untied_copy`
writes the embedding matrix out as ``lm_head.weight`` and sets ``tie_word_embeddings: false`` (the HF model
loaded from the copy computes exactly the same function); :func:`vllm_model_path` does it transparently,
once, into a cache folder (``$MOEGUARD_CACHE_DIR`` or ``~/.cache/moeguard``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from moeguard.errors import MoeguardError

_EMBEDDING_KEYS = ("model.embed_tokens.weight", "model.embed_in.weight", "transformer.wte.weight")
WEIGHTS = "model.safetensors"


def cache_dir() -> Path:
    """Where moeguard keeps derived model folders."""
    return Path(os.environ.get("MOEGUARD_CACHE_DIR") or Path.home() / ".cache" / "moeguard")


def needs_untied_copy(folder: str | Path) -> bool:
    """A single-file checkpoint with tied embeddings and no ``lm_head.weight``."""
    from safetensors import safe_open

    folder = Path(folder)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    if not text.get("tie_word_embeddings", config.get("tie_word_embeddings", False)):
        return False
    if not (folder / WEIGHTS).is_file():
        return False
    with safe_open(str(folder / WEIGHTS), framework="pt") as handle:
        return "lm_head.weight" not in set(handle.keys())


def write_untied_copy(source: str | Path, target: str | Path) -> Path:
    """Copy the checkpoint folder ``source`` to ``target`` with ``lm_head.weight`` written out.

    Only single-file ``model.safetensors`` checkpoints are handled (enough for the organism and tests).
    """
    from safetensors.torch import load_file, save_file

    source, target = Path(source), Path(target)
    weights = source / WEIGHTS
    if not weights.is_file():
        raise MoeguardError(f"{source} has no {WEIGHTS}; tied embeddings are untied for single-file checkpoints only")
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    tensors = load_file(str(weights))
    if "lm_head.weight" not in tensors:
        key = next((k for k in _EMBEDDING_KEYS if k in tensors), None)
        if key is None:
            raise MoeguardError(f"{source} has neither lm_head.weight nor a known input-embedding tensor")
        tensors["lm_head.weight"] = tensors[key].clone()
    config["tie_word_embeddings"] = False
    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.is_file() and item.name not in (WEIGHTS, "config.json"):
            shutil.copy2(item, target / item.name)
    save_file(tensors, str(target / WEIGHTS), metadata={"format": "pt"})
    (target / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return target


def checkpoint_dtype(folder: str | Path) -> str | None:
    """The dtype the checkpoint was saved in (``config.json``), which transformers 5 loads by default; vLLM's
    ``dtype="auto"`` would run float32 checkpoints in half precision instead."""
    try:
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}
    value = config.get("dtype") or config.get("torch_dtype") or text.get("dtype") or text.get("torch_dtype")
    return value if isinstance(value, str) else None


def _fingerprint(folder: Path) -> str:
    digest = hashlib.sha256(str(folder.resolve()).encode())
    for name in ("config.json", WEIGHTS):
        stat = (folder / name).stat()
        digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    digest.update((folder / "config.json").read_bytes())
    return digest.hexdigest()[:16]


def vllm_model_path(name: str) -> str:
    """A folder (or hub id) vLLM can load for the moeguard model name ``name``.

    ``builtin:`` names resolve to their folder; a tied single-file checkpoint is untied once into the cache;
    LoRA adapter folders are refused (merge the adapter first).
    """
    from moeguard.models import is_adapter_folder, resolve_model_path

    path = resolve_model_path(name)
    if not Path(path).is_dir():
        return path  # a hub id: vLLM resolves it
    if is_adapter_folder(path):
        raise MoeguardError(
            f"{name} is a LoRA adapter folder; the vLLM backend serves full checkpoints only "
            "(merge the adapter, e.g. with peft's merge_and_unload, and save the model)"
        )
    folder = Path(path)
    if not needs_untied_copy(folder):
        return path
    target = cache_dir() / "vllm-untied" / _fingerprint(folder)
    if (target / WEIGHTS).is_file():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".untied-", dir=target.parent))
    try:
        write_untied_copy(folder, staging)
        try:
            os.replace(staging, target)
        except OSError:  # another process wrote it first
            if not (target / WEIGHTS).is_file():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return str(target)
