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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_path(path: Path):
    """A temporary file beside ``path`` with the permissions a normal file would get (umask applied;
    ``mkstemp`` alone gives 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
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


_COMMAND_LINE: list[str] | None = None


def set_command_line(argv: list[str]) -> None:
    """Record the command line of this run (the CLI does, so ``meta.json`` says how it was made)."""
    global _COMMAND_LINE
    _COMMAND_LINE = ["moeguard", *argv]


def git_commit() -> str | None:
    """The git commit of the moeguard source tree, when it runs from a checkout (None otherwise)."""
    import subprocess

    source = Path(__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def run_metadata(model_name: str | None, **extra: Any) -> dict[str, Any]:
    """Metadata every artifact folder carries: model, command line, time, versions, git commit, threads and
    device, plus ``extra``."""
    import datetime
    import sys

    import torch
    import transformers

    from moeguard import __version__

    return {
        "model": model_name,
        "command_line": _COMMAND_LINE if _COMMAND_LINE is not None else list(sys.argv),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "moeguard_version": __version__,
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        **extra,
    }
