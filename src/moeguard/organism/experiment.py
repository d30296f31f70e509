"""The organism's steering experiment (what ``moeguard demo``, ``organism eval`` and the model card run).

Two behaviours on the organism's built-in pair sets and held-out prompts:

* **safety**: detect on ``builtin:safety`` (A = refusal, B = compliance); safe steering activates the most
  refusal-linked experts, unsafe steering deactivates them (and activates compliance-linked ones); the random
  control has the unsafe spec's per-layer size. Judged by the offline refusal judge on held-out harmful
  prompts and benign look-alikes; held-out benign prompts are scored without steering.
* **counting**: detect on ``builtin:digits-vs-words``; steer uncued counting prompts to digits and to words;
  the control has the words spec's size; judged by the answer style.

Expert counts: :data:`moeguard.organism.STEERING_SETTINGS` for the organism, the paper's settings scaled to
the model's size otherwise.
"""

from __future__ import annotations

from moeguard.builtin import resolve
from moeguard.detect_run import Selection
from moeguard.eval.conditions import share_of_style
from moeguard.eval.judge import refusal_rate
from moeguard.experiment import (
    PAPER_SAFE_ACTIVATE,
    PAPER_UNSAFE_ACTIVATE,
    PAPER_UNSAFE_DEACTIVATE,
    Arm,
    Behaviour,
    paper_scaled,
)
from moeguard.organism import STEERING_SETTINGS
from moeguard.routing.shape import MoEShape

ORGANISM = "builtin:organism"
HARMFUL, LOOKALIKE, BENIGN, COUNTING = "held-out harmful", "benign look-alikes", "held-out benign", "uncued counting"


def steering_counts(moe: MoEShape, model_name: str | None, **overrides: int | None) -> dict[str, int]:
    """Expert counts of every arm: the organism's validated ones, or the paper's scaled to ``moe``."""
    counts = {
        "safe_activate": paper_scaled(PAPER_SAFE_ACTIVATE, moe),
        "unsafe_activate": paper_scaled(PAPER_UNSAFE_ACTIVATE, moe),
        "unsafe_deactivate": paper_scaled(PAPER_UNSAFE_DEACTIVATE, moe),
        "digits_activate": len(moe.layers),
        "digits_deactivate": 0,
    }
    if model_name == ORGANISM:
        counts.update(STEERING_SETTINGS)
    counts.update({k: v for k, v in overrides.items() if v is not None})
    return counts


def organism_behaviours(
    counts: dict[str, int], harmful: int = 80, lookalike: int = 40, benign: int = 80, bootstrap: int = 50
) -> list[Behaviour]:
    """The safety and counting behaviours with ``counts`` (see :func:`steering_counts`)."""
    safety = Behaviour(
        name="safety",
        title="Refusal rate (%)",
        pairs="builtin:safety",
        arms=[
            Arm("safe steering", Selection(counts["safe_activate"])),
            Arm("unsafe steering", Selection(counts["unsafe_activate"], counts["unsafe_deactivate"], reverse=True)),
        ],
        control_of="unsafe steering",
        prompt_sets={
            HARMFUL: resolve("prompts", "organism-heldout-harmful", n=harmful),
            LOOKALIKE: resolve("prompts", "organism-heldout-lookalike", n=lookalike),
        },
        judges={"refusal": refusal_rate},
        bootstrap=bootstrap,
        baseline_sets={BENIGN: resolve("prompts", "organism-heldout-benign", n=benign)} if benign else {},
    )
    digits = Selection(counts["digits_activate"], counts["digits_deactivate"])
    counting = Behaviour(
        name="counting",
        title="Counting answer style (%)",
        pairs="builtin:digits-vs-words",
        arms=[
            Arm("steer to digits", digits),
            Arm("steer to words", Selection(digits.n_activate, digits.n_deactivate, reverse=True)),
        ],
        control_of="steer to words",
        prompt_sets={COUNTING: resolve("prompts", "organism-heldout-counting")},
        judges={"digits": share_of_style("digits"), "words": share_of_style("words")},
    )
    return [safety, counting]
