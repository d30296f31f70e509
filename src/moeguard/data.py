"""Paired conversations for SteerMoE detection (DESIGN §1.2): loading, chat templates, target spans.

A pair holds two conversations showing opposite behaviours (A and B), each with a *target* string
whose tokens are the ones counted (default: the conversation's last assistant message).

>>> pairs = read_pairs("pairs.jsonl")                  # or pairs.csv, builtin:safety, a hub dataset name
>>> encoded = encode_side(tokenizer, pairs[0], "a", 0)
>>> encoded.input_ids, encoded.span_mask               # the whole conversation; True on target tokens

Files: JSONL (one object per line) or CSV (``messages_a``/``messages_b`` cells hold JSON lists), with
fields ``messages_a``, ``messages_b`` (lists of ``{"role", "content"}``) and optional ``target_a``,
``target_b`` strings. Every malformed input raises a one-line :class:`MoeguardError`.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Literal

from moeguard.chat import format_conversation, has_chat_template
from moeguard.errors import MoeguardError
from moeguard.textio import iter_jsonl, iter_lines, read_text

Message = dict[str, str]
Side = Literal["a", "b"]
BUILTIN_PREFIX = "builtin:"
PAIR_FIELDS = ("messages_a", "messages_b", "target_a", "target_b")
_FILE_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv")


@dataclass(frozen=True)
class Pair:
    """Two conversations with opposite behaviours and the target string counted in each.

    ``target_a``/``target_b`` default to the content of the conversation's last assistant message.
    ``origin`` (e.g. ``"pairs.jsonl:4"``) only serves error messages.
    """

    messages_a: list[Message]
    messages_b: list[Message]
    target_a: str | None = None
    target_b: str | None = None
    origin: str | None = field(default=None, compare=False)

    def messages(self, side: Side) -> list[Message]:
        """The conversation of side ``"a"`` or ``"b"``."""
        return self.messages_a if side == "a" else self.messages_b

    def target(self, side: Side) -> str:
        """The explicit target of ``side``, else its last assistant message."""
        explicit = self.target_a if side == "a" else self.target_b
        if explicit is not None:
            return explicit
        return last_assistant_message(self.messages(side))

    def to_dict(self) -> dict[str, Any]:
        """Plain data in the file format (targets only when explicit)."""
        data: dict[str, Any] = {"messages_a": self.messages_a, "messages_b": self.messages_b}
        if self.target_a is not None:
            data["target_a"] = self.target_a
        if self.target_b is not None:
            data["target_b"] = self.target_b
        return data


def last_assistant_message(messages: list[Message]) -> str:
    """Content of the last ``assistant`` message (ValueError when there is none)."""
    for message in reversed(messages):
        if message["role"] == "assistant":
            return message["content"]
    raise ValueError("conversation has no assistant message")


# ---------------------------------------------------------------------------------------- validation
def _check_messages(value: Any, name: str, where: str) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise MoeguardError(f"{where}: '{name}' must be a non-empty list of {{role, content}} messages")
    for message in value:
        if (
            not isinstance(message, dict)
            or not isinstance(message.get("role"), str)
            or not isinstance(message.get("content"), str)
        ):
            raise MoeguardError(f"{where}: every message in '{name}' needs string 'role' and 'content'")
    return [{"role": m["role"], "content": m["content"]} for m in value]


def pair_from_record(record: Any, where: str) -> Pair:
    """Validate one record (a dict with the pair fields; extra fields are ignored) into a :class:`Pair`."""
    if isinstance(record, Pair):
        return record
    if not isinstance(record, Mapping):
        raise MoeguardError(
            f"{where}: expected an object with 'messages_a' and 'messages_b', got {type(record).__name__}"
        )
    missing = [name for name in ("messages_a", "messages_b") if record.get(name) is None]
    if missing:
        raise MoeguardError(
            f"{where}: missing field(s) {', '.join(missing)}; each pair needs messages_a and messages_b"
        )
    sides = {}
    for side in ("a", "b"):
        messages = _check_messages(record[f"messages_{side}"], f"messages_{side}", where)
        target = record.get(f"target_{side}")
        if target is not None and (not isinstance(target, str) or not target.strip()):
            raise MoeguardError(
                f"{where}: 'target_{side}' must be a non-empty string (or left out to count the last assistant message)"
            )
        if target is None:
            try:
                target = last_assistant_message(messages)
            except ValueError:
                raise MoeguardError(
                    f"{where}: messages_{side} has no assistant turn; add the assistant reply or give target_{side}"
                ) from None
            if not target.strip():
                raise MoeguardError(
                    f"{where}: the last assistant message of messages_{side} is empty; nothing to count"
                )
            target = None  # keep the default implicit
        sides[side] = (messages, target)
    return Pair(sides["a"][0], sides["b"][0], sides["a"][1], sides["b"][1], origin=where)


# ---------------------------------------------------------------------------------------- sources
def read_pairs(source: str | Path, max_pairs: int | None = None, seed: int = 0) -> list[Pair]:
    """Pairs from a JSONL/CSV file, ``builtin:NAME`` or a Hugging Face ``datasets`` name (``NAME[:split]``).

    ``max_pairs`` keeps the first N pairs (``seed`` only matters for built-in sets). Raises a one-line
    MoeguardError for a missing source, malformed data or no pairs at all.
    """
    if max_pairs is not None and max_pairs < 1:
        raise MoeguardError(f"max_pairs must be at least 1, got {max_pairs}")
    text = str(source)
    if text.startswith(BUILTIN_PREFIX):
        pairs = builtin_pairs(text[len(BUILTIN_PREFIX) :], n=max_pairs, seed=seed)
    else:
        path = Path(text).expanduser()
        if path.is_dir():
            raise MoeguardError(f"{path} is a folder; pass a .jsonl or .csv pair file")
        if path.is_file():
            pairs = list(islice(iter_pair_file(path), max_pairs))
        elif path.suffix.lower() in _FILE_SUFFIXES or text.startswith((".", "/", "~")):
            raise MoeguardError(
                f"pair file {path} does not exist; pass a .jsonl/.csv file, builtin:NAME or a hub dataset"
            )
        else:
            pairs = hub_pairs(text, max_pairs=max_pairs)
    if not pairs:
        raise MoeguardError(f"{source} has no pairs; add one object with messages_a and messages_b per line")
    return pairs[:max_pairs] if max_pairs is not None else pairs


def iter_pair_file(path: str | Path) -> Iterator[Pair]:
    """Stream pairs from a ``.csv`` file or a JSONL file (any other suffix; a ``.json`` list also works)."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        yield from _iter_csv(path)
        return
    first = next((line.lstrip()[:1] for _, line in iter_lines(path, "pair file") if line.strip()), "")
    if path.suffix.lower() == ".json" and first == "[":
        try:
            records = json.loads(read_text(path, "pair file"))
        except json.JSONDecodeError as err:
            raise MoeguardError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
        for number, record in enumerate(records):
            yield pair_from_record(record, f"{path} item {number}")
        return
    for where, record in iter_jsonl(path, "pair file"):
        yield pair_from_record(record, where)


def _iter_csv(path: Path) -> Iterator[Pair]:
    reader = csv.DictReader(line for _, line in iter_lines(path, "pair file"))
    header = reader.fieldnames or []
    missing = [name for name in ("messages_a", "messages_b") if name not in header]
    if header and missing:
        raise MoeguardError(
            f"{path}: CSV header lacks column(s) {', '.join(missing)}; "
            "columns: messages_a, messages_b[, target_a, target_b]"
        )
    try:
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if None in row:
                raise MoeguardError(f"{where}: more cells than header columns; quote cells with commas")
            record: dict[str, Any] = {}
            for name in PAIR_FIELDS:
                cell = row.get(name)
                if cell is None or cell == "":
                    continue
                if name.startswith("messages_"):
                    try:
                        record[name] = json.loads(cell)
                    except json.JSONDecodeError as err:
                        raise MoeguardError(f"{where}: column {name} is not a JSON message list ({err.msg})") from None
                else:
                    record[name] = cell
            yield pair_from_record(record, where)
    except csv.Error as err:
        raise MoeguardError(f"{path}:{reader.line_num}: malformed CSV ({err})") from None


def builtin_pairs(name: str, n: int | None = None, seed: int = 0) -> list[Pair]:
    """A built-in pair set (:mod:`moeguard.builtin`), validated like file input."""
    from moeguard.builtin import resolve

    name = name.removeprefix(BUILTIN_PREFIX)
    records = resolve("pairs", name, n=n, seed=seed)
    return [pair_from_record(record, f"{BUILTIN_PREFIX}{name} pair {i}") for i, record in enumerate(records)]


def hub_pairs(name: str, max_pairs: int | None = None) -> list[Pair]:
    """Pairs from a Hugging Face dataset ``NAME`` or ``NAME:split`` (default split ``train``).

    An unreachable hub or unknown dataset becomes a one-line MoeguardError.
    """
    from moeguard.hub import hub_problem, offline_switch

    dataset_name, _, split = name.partition(":")
    split = split or "train"
    problem = None if offline_switch() else hub_problem()
    if problem is not None:
        raise MoeguardError(
            f"cannot reach the Hugging Face hub for dataset {dataset_name!r} ({problem}); pass a local .jsonl/.csv "
            "pair file or builtin:NAME (or set HF_HUB_OFFLINE=1 to read the local datasets cache)"
        )
    try:
        import datasets

        dataset = datasets.load_dataset(dataset_name, split=split)
    except Exception as err:  # the hub raises many types (connection, offline, not found, bad split)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MoeguardError(
            f"could not load dataset {dataset_name!r} (split {split!r}) from the Hugging Face hub: "
            f"{first[:200]}; pass a local .jsonl/.csv pair file or builtin:NAME"
        ) from None
    records = islice(dataset, max_pairs) if max_pairs is not None else dataset
    return [pair_from_record(record, f"{dataset_name} row {i}") for i, record in enumerate(records)]


def pair_record_json(pair: Pair) -> str:
    """Canonical JSON of one pair (sorted keys, no spaces): the unit of :func:`pairs_sha256`."""
    return json.dumps(pair.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def pairs_sha256(pairs: Iterable[Pair]) -> str:
    """SHA-256 over the canonical JSON lines of the pairs (independent of file format and order of keys)."""
    digest = hashlib.sha256()
    for pair in pairs:
        digest.update((pair_record_json(pair) + "\n").encode("utf-8"))
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------- encoding
@dataclass
class EncodedSide:
    """One tokenised conversation: ``input_ids`` and ``span_mask`` (True on target-span tokens)."""

    input_ids: list[int]
    span_mask: list[bool]
    text: str
    char_span: tuple[int, int]

    @property
    def span_tokens(self) -> int:
        """Number of tokens in the target span."""
        return sum(self.span_mask)


def locate_span(tokenizer, text: str, target: str, where: str = "pair") -> EncodedSide:
    """Tokenise ``text`` and mark the tokens overlapping the *last* occurrence of ``target``.

    Character offsets from the (fast) tokenizer decide membership: a token belongs to the span when
    its characters overlap the target's characters (tokens straddling a boundary, e.g. ``" Sure"`` for
    target ``"Sure"``, are included; zero-width special tokens such as an added BOS never are). When
    ``target`` is absent verbatim, its whitespace-stripped form is tried (templates often strip).
    """
    if not getattr(tokenizer, "is_fast", False):
        raise MoeguardError(
            f"{type(tokenizer).__name__} is not a fast tokenizer, so target spans cannot be located by "
            "offsets; load the model's fast tokenizer (tokenizer.json)"
        )
    start = text.rfind(target)
    if start < 0 and target.strip() and target.strip() != target:
        target = target.strip()
        start = text.rfind(target)
    if start < 0:
        preview = target if len(target) <= 40 else target[:37] + "..."
        raise MoeguardError(
            f"{where}: target {preview!r} does not occur in the formatted conversation; "
            "make the target a verbatim part of a message"
        )
    end = start + len(target)
    encoding = tokenizer(text, add_special_tokens=not has_chat_template(tokenizer), return_offsets_mapping=True)
    ids = list(encoding["input_ids"])
    mask = [lo < end and hi > start and hi > lo for lo, hi in encoding["offset_mapping"]]
    if not any(mask):
        raise MoeguardError(f"{where}: the target span covers no token of the conversation; check the target")
    return EncodedSide(input_ids=ids, span_mask=mask, text=text, char_span=(start, end))


def encode_side(tokenizer, pair: Pair, side: Side, index: int) -> EncodedSide:
    """Format and tokenise one side of pair ``index`` and locate its target span."""
    where = f"pair {index}" + (f" ({pair.origin})" if pair.origin else "") + f", side {side.upper()}"
    text = format_conversation(tokenizer, pair.messages(side))
    return locate_span(tokenizer, text, pair.target(side), where=where)
