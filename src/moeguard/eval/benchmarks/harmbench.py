"""HarmBench text behaviours (Mazeika et al. 2024): ``harmbench_behaviors_text_all.csv``.

Columns ``Behavior, FunctionalCategory, SemanticCategory, Tags, ContextString, BehaviorID``
(centerforaisafety/HarmBench ``data/behavior_datasets/``; ``_test``/``_val`` files have the same
columns). ``FunctionalCategory`` is ``standard``, ``contextual`` or ``copyright``. A contextual behaviour's
prompt is its context, a ``---`` line, then the behaviour — the order HarmBench's own baselines use.
The hub copy ``walledai/HarmBench`` (config ``standard``) has ``prompt, category[, context]``.
All behaviours are harmful. Splits: the file parts (``all``, ``test``, ``val``) or a functional category.
"""

from __future__ import annotations

from moeguard.errors import MoeguardError
from moeguard.eval.benchmarks.item import BenchmarkItem
from moeguard.eval.benchmarks.registry import Benchmark, HubSource, Layout, RowContext, register, text_cell

#: Between a contextual behaviour's context and its request.
CONTEXT_SEPARATOR = "\n\n---\n\n"


def contextual_prompt(context: str, behavior: str) -> str:
    """The context first, then the behaviour (HarmBench's order)."""
    return f"{context}{CONTEXT_SEPARATOR}{behavior}" if context else behavior


def _published(row, ctx: RowContext) -> BenchmarkItem:
    behavior = text_cell(row, "Behavior", ctx.where)
    functional = text_cell(row, "FunctionalCategory", ctx.where, required=False)
    context = text_cell(row, "ContextString", ctx.where, required=False)
    if functional == "contextual" and not context:
        raise MoeguardError(f"{ctx.where}: contextual behaviour without a ContextString; fill it in or drop the row")
    behavior_id = text_cell(row, "BehaviorID", ctx.where, required=False) or str(ctx.index)
    return BenchmarkItem(
        id=f"harmbench:{behavior_id}",
        prompt=contextual_prompt(context, behavior),
        kind="harmful",
        category=text_cell(row, "SemanticCategory", ctx.where, required=False),
        context=context or None,
        source=ctx.where,
        meta={
            "behavior": behavior,
            "functional_category": functional,
            "tags": text_cell(row, "Tags", ctx.where, required=False),
        },
    )


def _mirror(row, ctx: RowContext) -> BenchmarkItem:
    behavior = text_cell(row, "prompt", ctx.where)
    context = text_cell(row, "context", ctx.where, required=False)
    return BenchmarkItem(
        id=f"harmbench:{ctx.part or 'hub'}:{ctx.index}",
        prompt=contextual_prompt(context, behavior),
        kind="harmful",
        category=text_cell(row, "category", ctx.where, required=False),
        context=context or None,
        source=ctx.where,
        meta={"behavior": behavior, "functional_category": "contextual" if context else "standard"},
    )


HARMBENCH = register(
    Benchmark(
        name="harmbench",
        title="HarmBench text behaviours (harmbench_behaviors_text_all.csv)",
        layouts=(
            Layout(
                ("Behavior", "FunctionalCategory", "SemanticCategory", "ContextString", "BehaviorID"),
                _published,
                optional=("Tags",),
            ),
            Layout(("prompt", "category"), _mirror, optional=("context",)),
        ),
        files={
            "all": ("harmbench_behaviors_text_all.csv",),
            "test": ("harmbench_behaviors_text_test.csv",),
            "val": ("harmbench_behaviors_text_val.csv",),
        },
        default_parts=("all",),
        hub=HubSource("walledai/HarmBench", config="standard"),
        labels=lambda item: (item.meta.get("functional_category", ""),),
    )
)
