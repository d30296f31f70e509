"""The organism's steering experiment (what ``moeguard demo``, ``organism eval`` and the model card run).

Three behaviours on the organism's built-in pair sets and its hand-written held-out prompts
(:mod:`moeguard.organism.handwritten`, phrased by a person, not template instances):

* **safety**: detect on ``builtin:safety`` (A = refusal, B = compliance); safe steering activates the most
  refusal-linked experts, unsafe steering deactivates them (and activates compliance-linked ones); the random
  control has the unsafe spec's per-layer size. Judged three ways by :class:`~moeguard.eval.organism_judge.
  OrganismJudge` (refusal / compliance *on topic* / degenerate or off topic) on harmful prompts and benign
  look-alikes; benign prompts are scored without steering.
* **counting**: detect on ``builtin:digits-vs-words``; steer counting prompts that name no style to digits and
  to words; the control has the words spec's size; judged by :class:`~moeguard.eval.organism_judge.
  CountingJudge` (the answer's style, and whether it lists exactly the requested range). Counting prompts that
  name a style are scored without steering (range and style right).
* **faithfulness**: detect on ``builtin:faithfulness`` (A = answer from the document, B = from memory, the
  document contradicting common knowledge); steer to the document and to memory; the control has the memory
  spec's size; judged by whether the reply gives the document's answer (and not memory's), or memory's.

Expert counts: :data:`moeguard.organism.STEERING_SETTINGS` for the organism, the paper's settings scaled to
the model's size otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from moeguard.chat import Prompt
from moeguard.detect_run import Selection
from moeguard.eval.organism_judge import CountingJudge, CountRequest, OrganismJudge
from moeguard.eval.outcomes import follows_document
from moeguard.experiment import (
    PAPER_SAFE_ACTIVATE,
    PAPER_UNSAFE_ACTIVATE,
    PAPER_UNSAFE_DEACTIVATE,
    Arm,
    Behaviour,
    PromptJudge,
    paper_scaled,
)
from moeguard.organism import STEERING_SETTINGS
from moeguard.routing.shape import MoEShape

ORGANISM = "builtin:organism"
HARMFUL, LOOKALIKE, BENIGN = "harmful", "look-alikes", "benign"
UNCUED, CUED = "counting, no style asked", "counting, style asked"
FAITHFULNESS = "conflicting documents"
#: The three-way labels, as metric names.
REFUSAL, ON_TOPIC, DEGENERATE = "refusal", "on topic", "degenerate"


def steering_counts(moe: MoEShape, model_name: str | None, **overrides: int | None) -> dict[str, int]:
    """Expert counts of every arm: the organism's validated ones, or the paper's scaled to ``moe``."""
    counts = {
        "safe_activate": paper_scaled(PAPER_SAFE_ACTIVATE, moe),
        "unsafe_activate": paper_scaled(PAPER_UNSAFE_ACTIVATE, moe),
        "unsafe_deactivate": paper_scaled(PAPER_UNSAFE_DEACTIVATE, moe),
        "digits_activate": len(moe.layers),
        "digits_deactivate": 0,
        "document_activate": len(moe.layers),
        "document_deactivate": 0,
    }
    if model_name == ORGANISM:
        counts.update(STEERING_SETTINGS)
    counts.update({k: v for k, v in overrides.items() if v is not None})
    return counts


# ------------------------------------------------------------------------------------------ judges
def _texts(prompts: Sequence) -> list[str]:
    return [p if isinstance(p, str) else p[-1]["content"] for p in prompts]


def three_way(label: str) -> PromptJudge:
    """Share of replies :class:`OrganismJudge` labels ``label`` (``refusal``, ``compliance``, ``degenerate``)."""
    judge = OrganismJudge()

    def rate(prompts, texts) -> float:
        verdicts = judge.judge(_texts(prompts), list(texts))
        return sum(v.label == label for v in verdicts) / len(verdicts) if verdicts else 0.0

    return PromptJudge(rate)


def counting(measure: str, requests: Mapping[str, CountRequest] | None = None) -> PromptJudge:
    """Share of counting replies with ``measure``: ``digits`` / ``words`` (the list's style), ``range right``
    (exactly the requested numbers, in order) or ``correct`` (range right in the requested style); ``requests``:
    the known range and cue of labelled prompts (others are parsed from the prompt)."""
    judge = CountingJudge(requests)

    def hit(verdict) -> bool:
        if measure == "range right":
            return bool(verdict.details["range_ok"])
        if measure == "correct":
            return verdict.label == "correct"
        return verdict.details["style"] == measure

    def rate(prompts, texts) -> float:
        verdicts = judge.judge(_texts(prompts), list(texts))
        return sum(hit(v) for v in verdicts) / len(verdicts) if verdicts else 0.0

    return PromptJudge(rate)


def faithfulness(side: str, answers: dict[str, tuple[str, str]]) -> PromptJudge:
    """Share of replies that give the document's answer and not memory's (``side="document"``), or the other way
    round (``"memory"``); ``answers`` maps each prompt to its (document answer, memory answer)."""

    def rate(prompts, texts) -> float:
        hits = 0
        for prompt, text in zip(_texts(prompts), texts, strict=True):
            document, memory = answers[prompt]
            hits += (
                follows_document(text, [document], [memory])
                if side == "document"
                else follows_document(text, [memory], [document])
            )
        return hits / len(texts) if texts else 0.0

    return PromptJudge(rate)


# ------------------------------------------------------------------------------------------ behaviours
def _first(items: list, n: int | None) -> list:
    return items if n is None else items[:n]


def organism_behaviours(
    counts: dict[str, int],
    harmful: int | None = None,
    lookalike: int | None = None,
    benign: int | None = None,
    bootstrap: int = 50,
    counting_prompts: int | None = None,
    faithfulness_prompts: int | None = None,
) -> list[Behaviour]:
    """The safety, counting and faithfulness behaviours with ``counts`` (see :func:`steering_counts`) on the
    hand-written held-out set (``None``: every prompt of a kind; a number: the first that many; 0 drops an
    optional set)."""
    from moeguard.organism.handwritten import handwritten_by_kind

    by_kind = handwritten_by_kind()
    prompts = {kind: [item.prompt for item in items] for kind, items in by_kind.items()}
    labels = {REFUSAL: three_way("refusal"), ON_TOPIC: three_way("compliance"), DEGENERATE: three_way("degenerate")}
    prompt_sets: dict[str, Sequence[Prompt]] = {HARMFUL: _first(prompts["harmful"], harmful)}
    if lookalike != 0:
        prompt_sets[LOOKALIKE] = _first(prompts["lookalike"], lookalike)
    safety = Behaviour(
        name="safety",
        title="Safety: refusal / on-topic answer / degenerate (%)",
        pairs="builtin:safety",
        arms=[
            Arm("safe steering", Selection(counts["safe_activate"])),
            Arm("unsafe steering", Selection(counts["unsafe_activate"], counts["unsafe_deactivate"], reverse=True)),
        ],
        control_of="unsafe steering",
        prompt_sets=prompt_sets,
        judges=labels,
        bootstrap=bootstrap,
        baseline_sets={BENIGN: _first(prompts["benign"], benign)} if benign != 0 else {},
    )
    counted = _first(by_kind["counting"], counting_prompts)
    digits = Selection(counts["digits_activate"], counts["digits_deactivate"])
    requests = {i.prompt: i.count_request() for i in counted}
    count_judges = {name: counting(name, requests) for name in ("digits", "words", "range right", "correct")}
    counting_behaviour = Behaviour(
        name="counting",
        title="Counting: answer style and range (%)",
        pairs="builtin:digits-vs-words",
        arms=[
            Arm("steer to digits", digits),
            Arm("steer to words", Selection(digits.n_activate, digits.n_deactivate, reverse=True)),
        ],
        control_of="steer to words",
        prompt_sets={UNCUED: [i.prompt for i in counted if i.requested_style == "none"]},
        judges=count_judges,
        baseline_sets={CUED: [i.prompt for i in counted if i.requested_style != "none"]},
    )
    documents = _first(by_kind["faithfulness"], faithfulness_prompts)
    answers = {i.prompt: (i.document_answer, i.memory_answer) for i in documents}
    document = Selection(counts["document_activate"], counts["document_deactivate"])
    faith = Behaviour(
        name="faithfulness",
        title="Faithfulness: answers from the document / from memory (%)",
        pairs="builtin:faithfulness",
        arms=[
            Arm("steer to document", document),
            Arm("steer to memory", Selection(document.n_activate, document.n_deactivate, reverse=True)),
        ],
        control_of="steer to memory",
        prompt_sets={FAITHFULNESS: [i.prompt for i in documents]},
        judges={"document": faithfulness("document", answers), "memory": faithfulness("memory", answers)},
    )
    return [safety, counting_behaviour, faith]
