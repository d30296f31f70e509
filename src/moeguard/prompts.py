"""Prompt files: JSONL with one ``{"prompt": ...}`` or ``{"messages": [...]}`` per line."""

from __future__ import annotations

from pathlib import Path

from moeguard.chat import Prompt
from moeguard.errors import MoeguardError
from moeguard.textio import iter_jsonl

__all__ = ["Prompt", "iter_jsonl", "read_prompts"]


def _check_messages(messages, where: str) -> list[dict[str, str]]:
    if not isinstance(messages, list) or not messages:
        raise MoeguardError(f"{where}: 'messages' must be a non-empty list of {{role, content}} objects")
    for message in messages:
        if (
            not isinstance(message, dict)
            or not isinstance(message.get("role"), str)
            or not isinstance(message.get("content"), str)
        ):
            raise MoeguardError(f"{where}: every message needs string 'role' and 'content' fields")
    return messages


def read_prompts(path: str | Path) -> list[Prompt]:
    """Prompts from a JSONL file (``prompt`` string or ``messages`` list per line; blank lines skipped).

    Raises a one-line MoeguardError naming the file and line for anything malformed or an empty file.
    """
    path = Path(path)
    prompts: list[Prompt] = []
    for where, record in iter_jsonl(path, "prompt file", "pass a JSONL file with one {'prompt': ...} per line"):
        if isinstance(record, dict) and isinstance(record.get("prompt"), str):
            prompts.append(record["prompt"])
        elif isinstance(record, dict) and "messages" in record:
            prompts.append(_check_messages(record["messages"], where))
        else:
            raise MoeguardError(f"{where}: expected an object with a 'prompt' string or a 'messages' list")
    if not prompts:
        raise MoeguardError(f"prompt file {path} has no prompts; add one JSON object per line")
    return prompts
