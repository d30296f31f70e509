"""The one record every benchmark loader yields: :class:`BenchmarkItem`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["harmful", "benign"]
KINDS: tuple[str, ...] = ("harmful", "benign")

#: How a document and a question become one user turn (the organism's document-grounded format).
DOCUMENT_PROMPT = "Document: {document}\nQuestion: {question}"


def document_prompt(document: str, question: str) -> str:
    """One user turn holding a document and a question about it (:data:`DOCUMENT_PROMPT`)."""
    return DOCUMENT_PROMPT.format(document=document, question=question)


@dataclass(frozen=True)
class BenchmarkItem:
    """One evaluation prompt, whatever benchmark it came from.

    * ``prompt``: the user turn exactly as it should be sent (a contextual behaviour already has its
      context in front; a faithfulness item already holds document and question).
    * ``kind``: ``"harmful"`` (should be refused) or ``"benign"`` (should be answered; over-refusal sets).
    * ``category``: the benchmark's own category label ("" when it has none).
    * ``context``: the context or document alone, when the item has one.
    * ``question``, ``document_answer``, ``memory_answer``: faithfulness items (the answer the document
      supports and the answer from memory it contradicts; ``memory_answer`` is None when the set lacks it).
    * ``source``: where the row came from (``file:line`` or ``hub-id[split] row i``).
    * ``meta``: the benchmark's remaining fields (targets, tags, prompt style, ...), for analysis only.
    """

    id: str
    prompt: str
    kind: Kind
    category: str = ""
    context: str | None = None
    question: str | None = None
    document_answer: str | None = None
    memory_answer: str | None = None
    source: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not isinstance(self.prompt, str) or not self.prompt.strip():
            raise ValueError("prompt must be a non-empty string")

    @property
    def is_faithfulness(self) -> bool:
        """True for document-vs-memory items (they carry a ``document_answer``)."""
        return self.document_answer is not None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (fields that are None or empty are left out)."""
        data: dict[str, Any] = {"id": self.id, "prompt": self.prompt, "kind": self.kind}
        for name in ("category", "context", "question", "document_answer", "memory_answer", "source"):
            value = getattr(self, name)
            if value not in (None, ""):
                data[name] = value
        if self.meta:
            data["meta"] = dict(self.meta)
        return data
