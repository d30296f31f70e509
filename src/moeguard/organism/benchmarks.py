"""The organism's held-out sets as :class:`BenchmarkItem` lists, for ``load_benchmark("builtin:...")``.

* ``builtin:organism-handwritten``: the hand-written set (``moeguard.organism.handwritten``).
  ``split``: a hand-written kind (``harmful``, ``benign``, ``lookalike``, ``counting``, ``faithfulness``),
  an item kind (``benign`` also covers look-alike, counting and faithfulness items) or a style.
* ``builtin:organism-heldout``: the corpus's template held-out prompts (``corpus.heldout_*_prompts``);
  ``split``: ``harmful``, ``benign``, ``lookalike``, ``counting``.
* ``builtin:organism-harmful`` / ``-benign`` / ``-lookalike`` / ``-counting``: one of those template sets
  alone (the prompts ``moeguard demo`` scores: 80 harmful, 80 benign, 40 look-alikes, 24 counting);
  ``split``: none, or the item kind (``harmful``/``benign``).

Look-alike, counting and faithfulness items are benign (they should be answered); their hand-written
kind is the ``category`` prefix and ``meta["set"]``.
"""

from __future__ import annotations

from moeguard.errors import MoeguardError
from moeguard.eval.benchmarks.item import BenchmarkItem
from moeguard.organism.handwritten import HANDWRITTEN_PATH, HandwrittenItem, load_handwritten


def _item(hw: HandwrittenItem) -> BenchmarkItem:
    meta: dict = {"set": hw.kind, "style": hw.style, "topic": hw.topic}
    if hw.kind == "counting":
        meta.update(start=hw.start, end=hw.end, requested_style=hw.requested_style)
    return BenchmarkItem(
        id=f"organism-handwritten:{hw.id}",
        prompt=hw.prompt,
        kind="harmful" if hw.kind == "harmful" else "benign",
        category=hw.topic if hw.kind in ("harmful", "benign") else f"{hw.kind}:{hw.topic}",
        context=hw.document,
        question=hw.question,
        document_answer=hw.document_answer,
        memory_answer=hw.memory_answer,
        source=f"{HANDWRITTEN_PATH.name}:{hw.id}",
        meta=meta,
    )


def _select(items: list[BenchmarkItem], split: str | None, name: str) -> list[BenchmarkItem]:
    if split is None:
        return items
    chosen = [i for i in items if split in (i.kind, i.meta.get("set"), i.meta.get("style"))]
    if not chosen:
        labels = sorted({str(v) for i in items for v in (i.kind, i.meta.get("set"), i.meta.get("style")) if v})
        raise MoeguardError(f"split {split!r} matches no item of builtin:{name}; available: {', '.join(labels)}")
    return chosen


def handwritten_items(split: str | None = None) -> list[BenchmarkItem]:
    """The hand-written held-out set as benchmark items (see the module docstring for ``split``)."""
    return _select([_item(hw) for hw in load_handwritten()], split, "organism-handwritten")


def template_items(split: str | None = None) -> list[BenchmarkItem]:
    """The corpus's template held-out prompts as benchmark items (``split``: a set name or kind)."""
    from moeguard.organism import corpus

    sets = {
        "harmful": corpus.heldout_harmful_prompts(),
        "benign": corpus.heldout_benign_prompts(),
        "lookalike": corpus.heldout_lookalike_prompts(),
        "counting": corpus.heldout_counting_prompts(),
    }
    items = [
        BenchmarkItem(
            id=f"organism-heldout:{name}:{i}",
            prompt=prompt,
            kind="harmful" if name == "harmful" else "benign",
            category=name,
            source=f"corpus.heldout_{name}_prompts[{i}]",
            meta={"set": name},
        )
        for name, prompts in sets.items()
        for i, prompt in enumerate(prompts)
    ]
    return _select(items, split, "organism-heldout")


TEMPLATE_SETS = ("harmful", "benign", "lookalike", "counting")


def template_set(name: str, split: str | None = None) -> list[BenchmarkItem]:
    """One template held-out set (``name`` in :data:`TEMPLATE_SETS`), in the corpus's fixed order."""
    if name not in TEMPLATE_SETS:
        raise MoeguardError(f"unknown organism template set {name!r}; one of {', '.join(TEMPLATE_SETS)}")
    items = [i for i in template_items(name) if i.meta["set"] == name]  # split "benign" alone also matches
    if split is None or split == items[0].kind:
        return items
    raise MoeguardError(
        f"split {split!r} matches no item of builtin:organism-{name}; its items are all {items[0].kind!r} "
        "(drop --split)"
    )
