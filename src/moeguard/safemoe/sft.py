"""Supervised fine-tuning data: JSONL conversations, loss on assistant tokens only.

A data file has one JSON object per line, either ``{"messages": [{"role": ..., "content": ...}, ...]}``
or ``{"prompt": ..., "response": ...}`` (one user turn, one assistant turn). Other fields (for example
``source`` written by ``moeguard attack build``) are ignored.

Tokenisation follows inference exactly: the conversation is rendered with the chat template and cut
at the start and end of every assistant message; each piece is tokenised on its own, so the prompt
part is tokenised just as ``generate`` tokenises a prompt with its generation prompt. Labels are the
token ids on assistant pieces (including the template's end-of-turn marker) and -100 elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from moeguard.chat import has_chat_template
from moeguard.errors import MoeguardError
from moeguard.textio import iter_jsonl

Messages = list[dict[str, str]]
IGNORE_INDEX = -100


def record_messages(record: object, where: str) -> Messages:
    """The conversation of one data record (``messages`` or ``prompt``/``response``)."""
    if isinstance(record, dict) and "messages" in record:
        messages = record["messages"]
        if (
            not isinstance(messages, list)
            or not messages
            or not all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                for m in messages
            )
        ):
            raise MoeguardError(f"{where}: 'messages' must be a non-empty list of {{role, content}} string objects")
        if not any(m["role"] == "assistant" for m in messages):
            raise MoeguardError(f"{where}: the conversation has no assistant message to train on")
        return [{"role": m["role"], "content": m["content"]} for m in messages]
    if isinstance(record, dict) and isinstance(record.get("prompt"), str) and isinstance(record.get("response"), str):
        return [
            {"role": "user", "content": record["prompt"]},
            {"role": "assistant", "content": record["response"]},
        ]
    raise MoeguardError(f"{where}: expected a 'messages' list or 'prompt' and 'response' strings")


def read_jsonl(path: str | Path, what: str = "data") -> list[tuple[str, object]]:
    """``(where, record)`` for every non-blank line of a JSONL file (one-line errors; empty is an error)."""
    out = list(iter_jsonl(path, f"{what} file", "pass a JSONL file with one JSON object per line"))
    if not out:
        raise MoeguardError(f"{what} file {path} is empty; add one JSON object per line")
    return out


def read_sft_file(path: str | Path) -> list[Messages]:
    """Conversations from a fine-tuning JSONL file."""
    return [record_messages(record, where) for where, record in read_jsonl(path)]


def _render(tokenizer, messages: Messages, add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def conversation_pieces(tokenizer, messages: Messages) -> list[tuple[str, bool]]:
    """The rendered conversation cut into ``(text, is_assistant)`` pieces."""
    if not has_chat_template(tokenizer):
        prompt = "\n".join(m["content"] for m in messages[:-1])
        if messages[-1]["role"] != "assistant":
            raise MoeguardError(
                "without a chat template only conversations ending in an assistant message are supported"
            )
        return [(prompt + "\n" if prompt else "", False), (messages[-1]["content"], True)]
    full = _render(tokenizer, messages, add_generation_prompt=False)
    pieces: list[tuple[str, bool]] = []
    cursor = 0
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(_render(tokenizer, messages[:i], add_generation_prompt=True)) if i else 0
        end_text = _render(tokenizer, messages[: i + 1], add_generation_prompt=False)
        if not full.startswith(end_text) or start > len(end_text) or start < cursor:
            raise MoeguardError(
                "the chat template renders earlier turns differently once later turns exist; "
                "train on single-turn records ({'prompt', 'response'}) with this tokenizer"
            )
        pieces.append((full[cursor:start], False))
        pieces.append((full[start : len(end_text)], True))
        cursor = len(end_text)
    pieces.append((full[cursor:], False))
    return [(text, flag) for text, flag in pieces if text]


def encode_conversation(tokenizer, messages: Messages, max_length: int = 512) -> dict[str, list[int]]:
    """``input_ids`` and ``labels`` (assistant tokens only, -100 elsewhere), truncated to ``max_length``."""
    template = has_chat_template(tokenizer)
    ids: list[int] = []
    labels: list[int] = []
    for number, (text, is_assistant) in enumerate(conversation_pieces(tokenizer, messages)):
        piece = tokenizer(text, add_special_tokens=(not template and number == 0))["input_ids"]
        ids.extend(piece)
        labels.extend(piece if is_assistant else [IGNORE_INDEX] * len(piece))
    if not template and tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
        labels.append(int(tokenizer.eos_token_id))
    return {"input_ids": ids[:max_length], "labels": labels[:max_length]}


class SFTDataset(torch.utils.data.Dataset):
    """Tokenised conversations; records whose assistant part is cut off entirely are dropped."""

    def __init__(self, tokenizer, conversations: Sequence[Messages], max_length: int = 512):
        if not conversations:
            raise MoeguardError("the fine-tuning data is empty; give at least one conversation")
        encoded = [encode_conversation(tokenizer, m, max_length) for m in conversations]
        self.items = [e for e in encoded if any(label != IGNORE_INDEX for label in e["labels"])]
        self.dropped = len(encoded) - len(self.items)
        if not self.items:
            raise MoeguardError(
                f"no conversation keeps an assistant token within max_length={max_length}; raise --max-length"
            )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return self.items[index]


class SFTCollator:
    """Right-pads ``input_ids`` (pad id), ``labels`` (-100) and builds ``attention_mask``."""

    def __init__(self, pad_id: int):
        self.pad_id = int(pad_id)

    def __call__(self, features: Sequence[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        length = max(len(f["input_ids"]) for f in features)
        batch = len(features)
        ids = torch.full((batch, length), self.pad_id, dtype=torch.long)
        labels = torch.full((batch, length), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((batch, length), dtype=torch.long)
        for row, feature in enumerate(features):
            n = len(feature["input_ids"])
            ids[row, :n] = torch.tensor(feature["input_ids"], dtype=torch.long)
            labels[row, :n] = torch.tensor(feature["labels"], dtype=torch.long)
            mask[row, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}
