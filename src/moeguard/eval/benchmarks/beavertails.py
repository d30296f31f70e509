"""BeaverTails (Ji et al. 2023): question–answer pairs with ``prompt, response, category, is_safe``.

``category`` maps each of the 14 harm categories to true/false; ``is_safe`` labels the *pair*. An item is
harmful when its pair is unsafe (``is_safe`` false: the prompt drew a harmful answer — the usual choice of
refusal evaluations, e.g. ``split="harmful"``) and benign otherwise; ``category`` lists the flagged
categories. Prompts repeat (several responses per prompt). Published as JSON lines
(``round0/30k/{train,test}.jsonl.gz``, 330k set under ``round0/330k/``) and on the hub as
``PKU-Alignment/BeaverTails`` with splits ``30k_train, 30k_test, 330k_train, 330k_test`` (default ``30k_test``).
"""

from __future__ import annotations

from moeguard.errors import MoeguardError
from moeguard.eval.benchmarks.item import BenchmarkItem
from moeguard.eval.benchmarks.registry import (
    Benchmark,
    HubSource,
    Layout,
    RowContext,
    register,
    structured_cell,
    text_cell,
)

SPLITS = ("30k_train", "30k_test", "330k_train", "330k_test")


def _flag(value, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise MoeguardError(f"{where}: 'is_safe' must be true or false, got {value!r}")


def _convert(row, ctx: RowContext) -> BenchmarkItem:
    flags = structured_cell(row, "category", ctx.where)
    if not isinstance(flags, dict):
        raise MoeguardError(f"{ctx.where}: 'category' must map harm categories to true/false")
    safe = _flag(row.get("is_safe"), ctx.where)
    flagged = sorted(name for name, on in flags.items() if _flag(on, ctx.where))
    return BenchmarkItem(
        id=f"beavertails:{ctx.part or 'file'}:{ctx.index}",
        prompt=text_cell(row, "prompt", ctx.where),
        kind="benign" if safe else "harmful",
        category=",".join(flagged),
        source=ctx.where,
        meta={"response": text_cell(row, "response", ctx.where, required=False), "is_safe": safe},
    )


def _files(size: str, part: str) -> tuple[str, ...]:
    return tuple(f"round0/{size}/{part}.jsonl{ext}" for ext in (".gz", ".xz", ""))


BEAVERTAILS = register(
    Benchmark(
        name="beavertails",
        title="BeaverTails (prompt/response/category/is_safe JSON lines)",
        layouts=(Layout(("prompt", "response", "category", "is_safe"), _convert),),
        files={f"{size}_{part}": _files(size, part) for size in ("30k", "330k") for part in ("train", "test")},
        default_parts=("30k_test",),
        hub=HubSource("PKU-Alignment/BeaverTails", splits=SPLITS, default_splits=("30k_test",)),
    )
)
