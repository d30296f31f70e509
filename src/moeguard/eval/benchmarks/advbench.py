"""AdvBench harmful behaviours (Zou et al. 2023): ``harmful_behaviors.csv`` with columns ``goal,target``.

Published in llm-attacks/llm-attacks ``data/advbench/harmful_behaviors.csv`` (520 rows). The hub copy
``walledai/AdvBench`` (split ``train``) names the request column ``prompt``. Every row is harmful.
"""

from __future__ import annotations

from moeguard.eval.benchmarks.item import BenchmarkItem
from moeguard.eval.benchmarks.registry import Benchmark, HubSource, Layout, RowContext, register, text_cell


def _item(prompt: str, row, ctx: RowContext) -> BenchmarkItem:
    return BenchmarkItem(
        id=f"advbench:{ctx.index}",
        prompt=prompt,
        kind="harmful",
        source=ctx.where,
        meta={"target": text_cell(row, "target", ctx.where, required=False)},
    )


def _published(row, ctx: RowContext) -> BenchmarkItem:
    return _item(text_cell(row, "goal", ctx.where), row, ctx)


def _mirror(row, ctx: RowContext) -> BenchmarkItem:
    return _item(text_cell(row, "prompt", ctx.where), row, ctx)


ADVBENCH = register(
    Benchmark(
        name="advbench",
        title="AdvBench (harmful_behaviors.csv)",
        layouts=(Layout(("goal", "target"), _published), Layout(("prompt", "target"), _mirror)),
        files={"all": ("harmful_behaviors.csv",)},
        default_parts=("all",),
        hub=HubSource("walledai/AdvBench"),
    )
)
