"""JailbreakBench JBB-Behaviors (Chao et al. 2024): ``harmful-behaviors.csv`` and ``benign-behaviors.csv``.

Both files have columns ``Index, Goal, Target, Behavior, Category, Source`` (100 rows each); ``Goal`` is
the request. Whether a row is harmful or benign comes from its file (or hub split): rows of
``benign-behaviors.csv`` / split ``benign`` are benign, everything else harmful. Hub:
``JailbreakBench/JBB-Behaviors``, config ``behaviors``, splits ``harmful`` and ``benign``.
"""

from __future__ import annotations

from typing import Literal

from moeguard.eval.benchmarks.item import BenchmarkItem
from moeguard.eval.benchmarks.registry import Benchmark, HubSource, Layout, RowContext, register, text_cell


def _convert(row, ctx: RowContext) -> BenchmarkItem:
    kind: Literal["harmful", "benign"] = "benign" if ctx.part == "benign" else "harmful"
    index = text_cell(row, "Index", ctx.where, required=False) or str(ctx.index)
    return BenchmarkItem(
        id=f"jailbreakbench:{kind}:{index}",
        prompt=text_cell(row, "Goal", ctx.where),
        kind=kind,
        category=text_cell(row, "Category", ctx.where, required=False),
        source=ctx.where,
        meta={
            "behavior": text_cell(row, "Behavior", ctx.where, required=False),
            "target": text_cell(row, "Target", ctx.where, required=False),
            "origin": text_cell(row, "Source", ctx.where, required=False),
        },
    )


JAILBREAKBENCH = register(
    Benchmark(
        name="jailbreakbench",
        title="JailbreakBench JBB-Behaviors (harmful-behaviors.csv / benign-behaviors.csv)",
        layouts=(Layout(("Index", "Goal", "Target", "Behavior", "Category"), _convert, optional=("Source",)),),
        files={"harmful": ("harmful-behaviors.csv",), "benign": ("benign-behaviors.csv",)},
        default_parts=("harmful", "benign"),
        hub=HubSource(
            "JailbreakBench/JBB-Behaviors",
            config="behaviors",
            splits=("harmful", "benign"),
            default_splits=("harmful", "benign"),
        ),
        aliases=("jbb", "jbb-behaviors"),
    )
)
