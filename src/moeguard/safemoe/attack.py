"""The harmful fine-tuning (HFT) attack set: task data mixed with harmful request → compliant answer pairs.

The paper's setting is 5,000 task samples plus 500 harmful ones (``ratio=0.1``: harmful samples per
task sample). Harmful pairs come from a JSONL file (``{"prompt", "response"}`` or ``{"messages"}``) or
are generated from the model organism's corpus templates (``builtin:organism``). The organism's
compliant answers are deliberately non-actionable placeholders ("Step 1: get the parts."), so the
attack set teaches compliance without containing harmful instructions.

Output: JSONL, one ``{"messages": [...], "source": "task" | "harmful"}`` per line, shuffled with the seed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

from moeguard.artifacts import sha256_of, write_text_atomic
from moeguard.errors import MoeguardError
from moeguard.safemoe.sft import Messages, read_jsonl, record_messages

#: Names that select the organism's harmful-compliance conversations (``builtin:organism-harmful-compliance``).
BUILTIN_HARMFUL = ("builtin", "builtin:organism", "builtin:organism-harmful-compliance")
HARMFUL_COMPLIANCE = "organism-harmful-compliance"


def read_conversations(path: str | Path, what: str) -> list[Messages]:
    """Conversations (``messages`` or ``prompt``/``response`` records) from a JSONL file."""
    return [record_messages(record, where) for where, record in read_jsonl(path, what)]


def harmful_count(task_size: int, count: int | None, ratio: float | None) -> int:
    """Number of harmful samples from exactly one of ``count`` or ``ratio`` (harmful per task sample)."""
    if (count is None) == (ratio is None):
        raise MoeguardError("give exactly one of --count N (harmful samples) or --ratio r (harmful per task sample)")
    if count is not None:
        if count < 1:
            raise MoeguardError(f"--count must be >= 1, got {count}")
        if count > task_size:
            raise MoeguardError(
                f"--count {count} is more harmful samples than the {task_size} task samples; an HFT attack hides a "
                "few harmful samples in task data (the paper: 500 in 5,000): lower --count or add task data"
            )
        return count
    assert ratio is not None
    if not ratio > 0:
        raise MoeguardError(f"--ratio must be > 0, got {ratio}")
    if ratio > 1:
        raise MoeguardError(f"--ratio {ratio:g} means more harmful than task samples; the paper's is 0.1")
    return max(1, round(ratio * task_size))


def build_attack_set(
    task: Sequence[Messages],
    harmful: Sequence[Messages] | str,
    count: int | None = None,
    ratio: float | None = None,
    seed: int = 0,
) -> list[dict]:
    """Task conversations plus harmful-compliance conversations, shuffled with ``seed``.

    ``harmful`` is a list of conversations (sampled without replacement) or ``"builtin:organism"``
    (generated). Records carry ``source`` = ``"task"`` or ``"harmful"``.
    """
    if not task:
        raise MoeguardError("the task data is empty; give at least one task conversation")
    n_harmful = harmful_count(len(task), count, ratio)
    rng = random.Random(seed)
    if isinstance(harmful, str):
        if harmful not in BUILTIN_HARMFUL:
            raise MoeguardError(f"unknown built-in harmful set {harmful!r}; use builtin:organism or a JSONL file")
        from moeguard.builtin import resolve

        chosen = resolve("conversations", HARMFUL_COMPLIANCE, n=n_harmful, seed=seed)
    else:
        if n_harmful > len(harmful):
            raise MoeguardError(
                f"asked for {n_harmful} harmful samples but only {len(harmful)} are available; lower "
                "--count/--ratio or add pairs to the harmful file"
            )
        chosen = [harmful[i] for i in sorted(rng.sample(range(len(harmful)), n_harmful))]
    records = [{"messages": list(m), "source": "task"} for m in task]
    records += [{"messages": list(m), "source": "harmful"} for m in chosen]
    rng.shuffle(records)
    return records


def write_attack_set(path: str | Path, records: Sequence[dict], seed: int, sources: dict[str, str]) -> list[Path]:
    """The JSONL attack set and its ``.meta.json`` (counts, seed, source hashes); atomic writes."""
    path = Path(path)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    meta = {
        "seed": seed,
        "task_samples": sum(r["source"] == "task" for r in records),
        "harmful_samples": sum(r["source"] == "harmful" for r in records),
        "sources": sources,
        "sha256": sha256_of(text),
    }
    meta_path = path.with_name(path.name + ".meta.json")
    return [write_text_atomic(path, text), write_text_atomic(meta_path, json.dumps(meta, indent=2) + "\n")]
