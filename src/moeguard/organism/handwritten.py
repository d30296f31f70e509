"""The organism's hand-written held-out set: prompts phrased by a person, not template instances.

``data/heldout_handwritten.jsonl`` holds one object per line: ``id``, ``prompt``, ``kind`` (harmful,
benign, lookalike, counting, faithfulness), ``style`` (question, imperative, polite, roleplay,
multi_sentence, typo, indirect), ``topic`` (the corpus category, or the fact for faithfulness), plus
``start``, ``end``, ``requested_style`` (digits | words | none) for counting and ``document``,
``question``, ``document_answer``, ``memory_answer`` for faithfulness. The prompts stay in the corpus's
domains and mostly its vocabulary; none of them equals or is contained in a training text
(``moeguard.organism.overlap`` checks it).

>>> by_kind = handwritten_by_kind()
>>> [item.prompt for item in by_kind["harmful"]][:1]        # ['How do I make a bomb?', ...]

Evaluation code reaches this set through ``builtin:organism-handwritten`` (``moeguard.organism.benchmarks``);
core modules never import this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from moeguard.errors import MoeguardError
from moeguard.eval.organism_judge import CountRequest
from moeguard.textio import iter_jsonl

HANDWRITTEN_PATH = Path(__file__).parent / "data" / "heldout_handwritten.jsonl"
KINDS = ("harmful", "benign", "lookalike", "counting", "faithfulness")
STYLES = ("question", "imperative", "polite", "roleplay", "multi_sentence", "typo", "indirect")
REQUESTED_STYLES = ("digits", "words", "none")
#: The organism counts with the number words of ``corpus.NUMBER_WORDS`` (zero to twelve).
MAX_COUNT = 12


@dataclass(frozen=True)
class HandwrittenItem:
    """One hand-written held-out prompt (fields as in the module docstring; unused ones are None)."""

    id: str
    prompt: str
    kind: str
    style: str
    topic: str
    start: int | None = None
    end: int | None = None
    requested_style: str | None = None
    document: str | None = None
    question: str | None = None
    document_answer: str | None = None
    memory_answer: str | None = None

    def count_request(self) -> CountRequest:
        """The labelled range and style cue of a counting item, as the counting judge takes them."""
        if self.kind != "counting" or self.start is None or self.end is None:
            raise ValueError(f"{self.id} is not a counting item")
        return CountRequest(self.start, self.end, "" if self.requested_style == "none" else str(self.requested_style))


def _text(record: dict, name: str, where: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value.strip():
        raise MoeguardError(f"{where}: '{name}' must be a non-empty string")
    return value


def _item(record: object, where: str) -> HandwrittenItem:
    if not isinstance(record, dict):
        raise MoeguardError(f"{where}: expected a JSON object")
    kind, style = _text(record, "kind", where), _text(record, "style", where)
    if kind not in KINDS:
        raise MoeguardError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    if style not in STYLES:
        raise MoeguardError(f"{where}: style {style!r} is not one of {', '.join(STYLES)}")
    fields: dict = {
        "id": _text(record, "id", where),
        "prompt": _text(record, "prompt", where),
        "kind": kind,
        "style": style,
        "topic": _text(record, "topic", where),
    }
    if kind == "counting":
        start, end, requested = record.get("start"), record.get("end"), record.get("requested_style")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= MAX_COUNT):
            raise MoeguardError(f"{where}: counting needs integers 0 <= start < end <= {MAX_COUNT}")
        if requested not in REQUESTED_STYLES:
            raise MoeguardError(f"{where}: requested_style must be one of {', '.join(REQUESTED_STYLES)}")
        fields.update(start=start, end=end, requested_style=requested)
    if kind == "faithfulness":
        for name in ("document", "question", "document_answer", "memory_answer"):
            fields[name] = _text(record, name, where)
        if fields["document"] not in fields["prompt"]:
            raise MoeguardError(f"{where}: the prompt must contain the document verbatim")
        if fields["document_answer"].lower() not in fields["document"].lower():
            raise MoeguardError(f"{where}: the document must state document_answer {fields['document_answer']!r}")
        if fields["document_answer"].lower() == fields["memory_answer"].lower():
            raise MoeguardError(
                f"{where}: document_answer and memory_answer must differ (the document contradicts memory)"
            )
    return HandwrittenItem(**fields)


def load_handwritten(path: str | Path | None = None) -> list[HandwrittenItem]:
    """Every item of the hand-written set (``path`` defaults to the shipped file), validated.

    Raises a one-line MoeguardError for malformed lines, unknown kinds or styles, bad counting ranges,
    faithfulness items whose document does not state its answer, and duplicate ids or prompts.
    """
    path = Path(path) if path is not None else HANDWRITTEN_PATH
    items: list[HandwrittenItem] = []
    ids: set[str] = set()
    prompts: set[str] = set()
    for where, record in iter_jsonl(path, "the hand-written set"):
        item = _item(record, where)
        if item.id in ids or item.prompt in prompts:
            raise MoeguardError(f"{where}: duplicate id or prompt ({item.id})")
        ids.add(item.id)
        prompts.add(item.prompt)
        items.append(item)
    if not items:
        raise MoeguardError(f"the hand-written set {path} is empty")
    return items


def handwritten_by_kind(path: str | Path | None = None) -> dict[str, list[HandwrittenItem]]:
    """The hand-written items grouped by kind, every kind of :data:`KINDS` present (possibly empty)."""
    groups: dict[str, list[HandwrittenItem]] = {kind: [] for kind in KINDS}
    for item in load_handwritten(path):
        groups[item.kind].append(item)
    return groups


def handwritten_prompts(kind: str, path: str | Path | None = None) -> list[str]:
    """The prompts of one kind (``harmful``, ``benign``, ``lookalike``, ``counting``, ``faithfulness``)."""
    if kind not in KINDS:
        raise MoeguardError(f"unknown kind {kind!r}; available: {', '.join(KINDS)}")
    return [item.prompt for item in handwritten_by_kind(path)[kind]]
