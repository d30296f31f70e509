"""Atomic artifact writes (temp file + rename) and run metadata."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


def _atomic_path(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    tmp = _atomic_path(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Pretty JSON, atomically."""
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_csv_atomic(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """A CSV table with a header row, atomically."""
    path = Path(path)
    tmp = _atomic_path(path)
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_safetensors_atomic(path: str | Path, tensors: dict, metadata: dict[str, str] | None = None) -> Path:
    """``safetensors.torch.save_file`` through a temporary file and a rename."""
    from safetensors.torch import save_file

    path = Path(path)
    tmp = _atomic_path(path)
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_figure_atomic(figure, path: str | Path, **kwargs) -> Path:
    """``figure.savefig`` through a temporary file and a rename."""
    path = Path(path)
    tmp = _atomic_path(path)
    try:
        figure.savefig(tmp, format=path.suffix.lstrip(".") or "png", **kwargs)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def sha256_of(data: bytes | str) -> str:
    """Hex SHA-256 of bytes or text (used to identify datasets in metadata)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def run_metadata(model_name: str | None, **extra: Any) -> dict[str, Any]:
    """Metadata every artifact folder carries: model, moeguard/torch/transformers versions, extras."""
    import torch
    import transformers

    from moeguard import __version__

    return {
        "model": model_name,
        "moeguard_version": __version__,
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        **extra,
    }
