"""Prompt files: JSONL with one ``{"prompt": ...}`` or ``{"messages": [...]}`` per line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from moeguard.chat import Prompt
from moeguard.errors import MoeguardError

__all__ = ["Prompt", "iter_jsonl", "read_prompts"]


def _check_messages(messages, where: str) -> list[dict[str, str]]:
    if not isinstance(messages, list) or not messages:
        raise MoeguardError(f"{where}: 'messages' must be a non-empty list of {{role, content}} objects")
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) or not isinstance(
            message.get("content"), str
        ):
            raise MoeguardError(f"{where}: every message needs string 'role' and 'content' fields")
    return messages


def iter_jsonl(path: str | Path) -> Iterator[tuple[str, Any]]:
    """``(where, record)`` for every non-blank line of a JSONL file, streamed; ``where`` is ``path:line``.

    A line that is not JSON raises a one-line MoeguardError naming the file and line.
    """
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise MoeguardError(f"{where}: not valid JSON ({err.msg}); one object per line") from None
            yield where, record


def read_prompts(path: str | Path) -> list[Prompt]:
    """Prompts from a JSONL file (``prompt`` string or ``messages`` list per line; blank lines skipped).

    Raises a one-line MoeguardError naming the file and line for anything malformed or an empty file.
    """
    path = Path(path)
    if not path.is_file():
        raise MoeguardError(f"prompt file {path} does not exist; pass a JSONL file with one {{'prompt': ...}} per line")
    prompts: list[Prompt] = []
    for where, record in iter_jsonl(path):
        if isinstance(record, dict) and isinstance(record.get("prompt"), str):
            prompts.append(record["prompt"])
        elif isinstance(record, dict) and "messages" in record:
            prompts.append(_check_messages(record["messages"], where))
        else:
            raise MoeguardError(f"{where}: expected an object with a 'prompt' string or a 'messages' list")
    if not prompts:
        raise MoeguardError(f"prompt file {path} has no prompts; add one JSON object per line")
    return prompts
