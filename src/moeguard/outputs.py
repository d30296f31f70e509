"""Output paths checked before any work starts: a folder (or file) that can actually be written.

Every command that writes artifacts calls :func:`check_output_folder` / :func:`check_output_file` before it
loads a model, so a wrong ``--output`` costs one line and exit code 2, not the run.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from moeguard.errors import MoeguardError


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path.cwd()


def _check_writable_ancestor(path: Path, flag: str) -> None:
    existing = _nearest_existing(path)
    if not existing.is_dir():
        raise MoeguardError(f"{flag} {path} is inside {existing}, which is a file; pass a path in a folder")
    try:
        probe = tempfile.mkdtemp(prefix=".moeguard-write-check-", dir=existing)
    except OSError as err:
        raise MoeguardError(
            f"{flag} {path} cannot be written ({existing}: {err.strerror or err}); pass a writable path"
        ) from None
    os.rmdir(probe)


def check_output_folder(path: str | Path, flag: str = "--output") -> Path:
    """``path`` is a folder or can become one, and files can be written in it; returns it as a Path."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise MoeguardError(f"{flag} {path} is a file; pass a folder for the artifacts")
    _check_writable_ancestor(path, flag)
    return path


def check_output_file(path: str | Path, flag: str = "--output") -> Path:
    """``path`` is a file (or does not exist yet) that can be written; returns it as a Path."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise MoeguardError(f"{flag} {path} is a folder; pass a file name")
    _check_writable_ancestor(path.parent if str(path.parent) else Path("."), flag)
    if path.exists() and not os.access(path, os.W_OK):
        raise MoeguardError(f"{flag} {path} is not writable; pass another file")
    return path


def check_output_is_new_or_empty(path: Path, flag: str = "--output", hint: str = "--overwrite") -> None:
    """Refuse a folder that already holds files (runs must not mix)."""
    if path.is_dir() and any(path.iterdir()):
        raise MoeguardError(f"{flag} {path} is not empty; pass a new folder or {hint}")
