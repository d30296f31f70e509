"""XSTest (Röttger et al. 2024), over-refusal: ``xstest_prompts.csv`` with ``id, prompt, type, label, focus, note``.

Published in paul-rottger/exaggerated-safety (450 rows: 250 ``safe`` prompts a model should answer, 200
``unsafe`` contrast prompts, types prefixed ``contrast_``). ``label`` safe → benign, unsafe → harmful;
``category`` is the prompt ``type``. Splits: ``safe``/``benign``, ``unsafe``/``harmful``, or a type.
Hub copy: ``Paul/XSTest``.
"""

from __future__ import annotations

from moeguard.errors import MoeguardError
from moeguard.eval.benchmarks.item import BenchmarkItem
from moeguard.eval.benchmarks.registry import Benchmark, HubSource, Layout, RowContext, register, text_cell

_KIND = {"safe": "benign", "unsafe": "harmful"}


def _convert(row, ctx: RowContext) -> BenchmarkItem:
    label = text_cell(row, "label", ctx.where).lower()
    if label not in _KIND:
        raise MoeguardError(f"{ctx.where}: XSTest label must be 'safe' or 'unsafe', got {label!r}")
    return BenchmarkItem(
        id=f"xstest:{text_cell(row, 'id', ctx.where, required=False) or ctx.index}",
        prompt=text_cell(row, "prompt", ctx.where),
        kind=_KIND[label],  # type: ignore[arg-type]
        category=text_cell(row, "type", ctx.where, required=False),
        source=ctx.where,
        meta={
            "label": label,
            "focus": text_cell(row, "focus", ctx.where, required=False),
            "note": text_cell(row, "note", ctx.where, required=False),
        },
    )


XSTEST = register(
    Benchmark(
        name="xstest",
        title="XSTest (xstest_prompts.csv)",
        layouts=(Layout(("id", "prompt", "type", "label"), _convert, optional=("focus", "note")),),
        files={"all": ("xstest_prompts.csv",)},
        default_parts=("all",),
        hub=HubSource("Paul/XSTest"),
        labels=lambda item: (item.meta.get("label", ""), item.category),
    )
)
