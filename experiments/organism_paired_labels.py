"""Paired comparison of organisms on the hand-written held-out set: the three-way judge's label of every prompt's
greedy baseline reply (one CPU thread) for each model, the counts, and an exact McNemar test of each model
against the first on the prompts whose label changed. Usage::

    python experiments/organism_paired_labels.py --output LABELS.json BASE_FOLDER OTHER_FOLDER [...]
"""

from __future__ import annotations

import argparse
import json

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from moeguard.eval.organism_judge import OrganismJudge
from moeguard.eval.stats import mcnemar_exact
from moeguard.generation import generate
from moeguard.organism.handwritten import handwritten_by_kind

KINDS = ("benign", "lookalike", "harmful")
LABELS = ("refusal", "compliance", "degenerate")


def replies_of(folder: str, prompts: dict[str, list[str]]) -> dict[str, list[str]]:
    """Greedy replies (64 new tokens) of the model in ``folder`` to each kind's prompts (the model loaded once)."""
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return {kind: generate(model, tokenizer, texts, max_new_tokens=64) for kind, texts in prompts.items()}


def mcnemar(base: list[str], other: list[str], label: str) -> tuple[int, int, float]:
    """Prompts that gained / lost ``label`` from ``base`` to ``other``, and the exact two-sided p-value."""
    gained = sum(a != label and b == label for a, b in zip(base, other, strict=True))
    lost = sum(a == label and b != label for a, b in zip(base, other, strict=True))
    return gained, lost, mcnemar_exact(gained, lost)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    items = handwritten_by_kind()
    prompts_of = {kind: [item.prompt for item in items[kind]] for kind in KINDS}
    replies = {folder: replies_of(folder, prompts_of) for folder in args.folders}
    judge = OrganismJudge()
    stored = {}
    for kind in KINDS:
        prompts = prompts_of[kind]
        labels = {}
        for folder in args.folders:
            labels[folder] = [v.label for v in judge.judge(prompts, replies[folder][kind])]
            rows = zip(prompts, replies[folder][kind], labels[folder], strict=True)
            stored[f"{kind} | {folder}"] = [{"prompt": p, "reply": r, "label": lab} for p, r, lab in rows]
            counts = {lab: labels[folder].count(lab) for lab in LABELS}
            print(f"{kind:9s} {folder}: {counts} of {len(prompts)}")
        base = args.folders[0]
        for folder in args.folders[1:]:
            for label in ("compliance", "refusal"):
                gained, lost, p = mcnemar(labels[base], labels[folder], label)
                print(f"    {label}: {folder} vs {base}: gained {gained}, lost {lost}, exact McNemar p = {p:.3f}")
    with open(args.output, "w") as f:
        json.dump(stored, f, indent=1)


if __name__ == "__main__":
    main()
