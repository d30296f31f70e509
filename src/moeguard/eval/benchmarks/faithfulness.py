"""Faithfulness sets: a document contradicts what the model memorised; does the answer follow the document?

* ``nqswap`` (Longpre et al. 2021; hub ``pminervini/NQ-Swap``, split ``dev``): ``question, org_context,
  org_answer, sub_context, sub_answer`` — the substituted context ``sub_context`` is the document, its
  answer ``sub_answer`` the document answer, ``org_answer`` the memory answer (answers are lists; the
  first is used, all are kept in ``meta``).
* ``faitheval`` (FaithEval counterfactual, Ming et al. 2024; hub ``Salesforce/FaithEval-counterfactual-v1.0``,
  split ``test``): ``context, question, choices, answerKey`` — the choice named by ``answerKey`` is the
  answer the counterfactual context supports; the set has no memory answer (``memory_answer`` is None).
* ``faithfulness`` (moeguard's own layout, for hand-made sets): ``document, question, document_answer,
  memory_answer`` [, ``id``, ``prompt``, ``category``].

Every item is benign; its ``prompt`` is ``Document: ...\\nQuestion: ...`` (:data:`DOCUMENT_PROMPT`) unless
the row brings its own ``prompt``.
"""

from __future__ import annotations

from moeguard.errors import MoeguardError
from moeguard.eval.benchmarks.item import BenchmarkItem, document_prompt
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


def _answers(row, column: str, where: str) -> list[str]:
    value = row.get(column)
    if isinstance(value, str) and value.strip().startswith("["):
        value = structured_cell(row, column, where)
    return strings(value, column, where)


def _nqswap(row, ctx: RowContext) -> BenchmarkItem:
    document = text_cell(row, "sub_context", ctx.where)
    question = text_cell(row, "question", ctx.where)
    document_answers = _answers(row, "sub_answer", ctx.where)
    memory_answers = _answers(row, "org_answer", ctx.where)
    return BenchmarkItem(
        id=f"nqswap:{ctx.index}",
        prompt=document_prompt(document, question),
        kind="benign",
        category="knowledge-conflict",
        context=document,
        question=question,
        document_answer=document_answers[0],
        memory_answer=memory_answers[0],
        source=ctx.where,
        meta={
            "document_answers": document_answers,
            "memory_answers": memory_answers,
            "original_context": text_cell(row, "org_context", ctx.where, required=False),
        },
    )


def _choices(row, where: str) -> list[tuple[str, str]]:
    value = structured_cell(row, "choices", where)
    if isinstance(value, dict) and isinstance(value.get("label"), list) and isinstance(value.get("text"), list):
        pairs = list(zip(value["label"], value["text"], strict=False))
    elif isinstance(value, list) and all(isinstance(c, dict) and "label" in c and "text" in c for c in value):
        pairs = [(c["label"], c["text"]) for c in value]
    else:
        raise MoeguardError(
            f"{where}: 'choices' must be {{'label': [...], 'text': [...]}} or a list of {{label, text}}"
        )
    return [(str(label).strip(), str(text).strip()) for label, text in pairs]


def _faitheval(row, ctx: RowContext) -> BenchmarkItem:
    document = text_cell(row, "context", ctx.where)
    question = text_cell(row, "question", ctx.where)
    choices = _choices(row, ctx.where)
    key = text_cell(row, "answerKey", ctx.where)
    answer = dict(choices).get(key)
    if answer is None:
        raise MoeguardError(f"{ctx.where}: answerKey {key!r} is not one of the choice labels {[c for c, _ in choices]}")
    options = "\n".join(f"{label}. {text}" for label, text in choices)
    return BenchmarkItem(
        id=f"faitheval:{text_cell(row, 'id', ctx.where, required=False) or ctx.index}",
        prompt=document_prompt(document, f"{question}\n{options}"),
        kind="benign",
        category="counterfactual",
        context=document,
        question=question,
        document_answer=answer,
        memory_answer=None,
        source=ctx.where,
        meta={"answer_key": key, "choices": dict(choices)},
    )


def _own(row, ctx: RowContext) -> BenchmarkItem:
    document = text_cell(row, "document", ctx.where)
    question = text_cell(row, "question", ctx.where)
    return BenchmarkItem(
        id=f"faithfulness:{text_cell(row, 'id', ctx.where, required=False) or ctx.index}",
        prompt=text_cell(row, "prompt", ctx.where, required=False) or document_prompt(document, question),
        kind="benign",
        category=text_cell(row, "category", ctx.where, required=False) or "faithfulness",
        context=document,
        question=question,
        document_answer=text_cell(row, "document_answer", ctx.where),
        memory_answer=text_cell(row, "memory_answer", ctx.where),
        source=ctx.where,
    )


NQSWAP = register(
    Benchmark(
        name="nqswap",
        title="NQ-Swap (question/org_context/org_answer/sub_context/sub_answer)",
        layouts=(Layout(("question", "org_context", "org_answer", "sub_context", "sub_answer"), _nqswap),),
        hub=HubSource("pminervini/NQ-Swap", splits=("dev",), default_splits=("dev",)),
        aliases=("nq-swap",),
    )
)
FAITHEVAL = register(
    Benchmark(
        name="faitheval",
        title="FaithEval counterfactual (context/question/choices/answerKey)",
        layouts=(Layout(("context", "question", "choices", "answerKey"), _faitheval, optional=("id",)),),
        hub=HubSource("Salesforce/FaithEval-counterfactual-v1.0", splits=("test",), default_splits=("test",)),
        aliases=("faitheval-counterfactual",),
    )
)
FAITHFULNESS = register(
    Benchmark(
        name="faithfulness",
        title="moeguard faithfulness set (document/question/document_answer/memory_answer)",
        layouts=(
            Layout(
                ("document", "question", "document_answer", "memory_answer"),
                _own,
                optional=("id", "prompt", "category"),
            ),
        ),
    )
)
