"""StrongREJECT (Souly et al. 2024): ``strongreject_dataset.csv`` with columns ``category, source, forbidden_prompt``.

Published in alexandrasouly/strongreject ``strongreject_dataset/`` (the full set and
``strongreject_small_dataset.csv``, same columns). Every prompt is harmful. The hub copy
``walledai/StrongREJECT`` (split ``train``) names the prompt column ``prompt``.
"""

from __future__ import annotations

from moeguard.eval.benchmarks.item import BenchmarkItem
from moeguard.eval.benchmarks.registry import Benchmark, HubSource, Layout, RowContext, register, text_cell


def _item(prompt: str, row, ctx: RowContext) -> BenchmarkItem:
    return BenchmarkItem(
        id=f"strongreject:{ctx.part or 'all'}:{ctx.index}",
        prompt=prompt,
        kind="harmful",
        category=text_cell(row, "category", ctx.where, required=False),
        source=ctx.where,
        meta={"origin": text_cell(row, "source", ctx.where, required=False)},
    )


def _published(row, ctx: RowContext) -> BenchmarkItem:
    return _item(text_cell(row, "forbidden_prompt", ctx.where), row, ctx)


def _mirror(row, ctx: RowContext) -> BenchmarkItem:
    return _item(text_cell(row, "prompt", ctx.where), row, ctx)


STRONGREJECT = register(
    Benchmark(
        name="strongreject",
        title="StrongREJECT (strongreject_dataset.csv)",
        layouts=(
            Layout(("category", "source", "forbidden_prompt"), _published),
            Layout(("prompt",), _mirror, optional=("category",)),
        ),
        files={"all": ("strongreject_dataset.csv",), "small": ("strongreject_small_dataset.csv",)},
        default_parts=("all",),
        hub=HubSource("walledai/StrongREJECT"),
        aliases=("strong-reject",),
    )
)
