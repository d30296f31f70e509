"""SORRY-Bench (Xie et al. 2024): ``question.jsonl`` with ``question_id, category, turns, prompt_style``.

``turns`` is a list of user turns (one in the base set); ``prompt_style`` names the linguistic mutation
(``base``, ``slang``, ``translate-fr``, ...); ``category`` is the category number as a string. Every
request is one the benchmark expects to be refused (harmful). Multi-turn entries are joined with blank
lines. Splits: ``harmful`` or a prompt style. Hub: ``sorry-bench/sorry-bench-202406`` (gated, split ``train``).
"""

from __future__ import annotations

from moeguard.eval.benchmarks.item import BenchmarkItem
from moeguard.eval.benchmarks.registry import (
    Benchmark,
    HubSource,
    Layout,
    RowContext,
    register,
    strings,
    structured_cell,
    text_cell,
)


def _convert(row, ctx: RowContext) -> BenchmarkItem:
    turns = strings(structured_cell(row, "turns", ctx.where), "turns", ctx.where)
    style = text_cell(row, "prompt_style", ctx.where, required=False) or "base"
    question_id = text_cell(row, "question_id", ctx.where, required=False) or str(ctx.index)
    return BenchmarkItem(
        id=f"sorrybench:{question_id}:{style}",
        prompt="\n\n".join(turns),
        kind="harmful",
        category=text_cell(row, "category", ctx.where, required=False),
        source=ctx.where,
        meta={"prompt_style": style, "turns": turns},
    )


SORRYBENCH = register(
    Benchmark(
        name="sorrybench",
        title="SORRY-Bench (question.jsonl)",
        layouts=(Layout(("question_id", "category", "turns"), _convert, optional=("prompt_style",)),),
        files={"all": ("question.jsonl",)},
        default_parts=("all",),
        hub=HubSource("sorry-bench/sorry-bench-202406"),
        aliases=("sorry-bench",),
        labels=lambda item: (item.meta.get("prompt_style", ""),),
    )
)
