"""Does a held-out set overlap the organism's training text? Containment and n-gram statistics.

The training text is regenerated exactly as ``moeguard.organism.train`` builds it from an
:class:`OrganismConfig` (default: the shipped organism's): the aligned chat conversations, the
helpful-only ones of the first stage, the style-routed counting conversations and the pretraining
texts. Every message and pretraining text is one training text.

Text is compared normalised (:func:`normalise`: lower case, every run of non-alphanumerics one space),
so punctuation and case never hide a copy. A prompt *overlaps* when its normalised form equals or is
contained (on word boundaries) in a normalised training text. The n-gram statistics say how much of
the wording is shared even without a copy.

``python -m moeguard.organism.overlap`` prints the report for the hand-written set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

_NON_WORD = re.compile(r"[^0-9a-z]+")


def normalise(text: str) -> str:
    """Lower case, runs of anything but letters and digits become one space, stripped."""
    return _NON_WORD.sub(" ", text.lower()).strip()


def training_texts(config=None) -> list[str]:
    """Every text the organism trains on under ``config`` (default ``OrganismConfig()``), one per message."""
    from moeguard.organism.train import OrganismConfig, training_data

    return training_data(config or OrganismConfig()).texts()


def ngrams(words: Sequence[str], n: int) -> set[str]:
    """The word n-grams of ``words`` (joined by spaces); a text shorter than ``n`` words has none."""
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


@dataclass
class OverlapReport:
    """Overlap of ``n_prompts`` prompts with ``n_training_texts`` distinct normalised training texts.

    * ``contained``: ids of prompts equal to or contained in a training text (must be empty).
    * ``with_shared_ngram[n]``: ids of prompts with at least one n-gram that occurs in training.
    * ``shared_fraction[n]``: mean over prompts (with ≥ 1 n-gram) of the share of their n-grams seen in training.
    * ``by_kind[n]``: per kind, the share of prompts with a shared n-gram.
    """

    n_prompts: int
    n_training_texts: int
    contained: list[str] = field(default_factory=list)
    with_shared_ngram: dict[int, list[str]] = field(default_factory=dict)
    shared_fraction: dict[int, float] = field(default_factory=dict)
    by_kind: dict[int, dict[str, float]] = field(default_factory=dict)

    def share_with_shared_ngram(self, n: int) -> float:
        """Share of prompts with at least one n-gram that occurs in training."""
        return len(self.with_shared_ngram[n]) / self.n_prompts if self.n_prompts else 0.0

    def summary(self) -> str:
        """A few lines for people."""
        lines = [
            f"{self.n_prompts} prompts vs {self.n_training_texts} distinct training texts; "
            f"equal to or contained in a training text: {len(self.contained)}"
            + (f" ({', '.join(self.contained)})" if self.contained else "")
        ]
        for n in sorted(self.with_shared_ngram):
            kinds = ", ".join(f"{k} {100 * v:.0f}%" for k, v in self.by_kind[n].items())
            lines.append(
                f"{n}-grams: {100 * self.share_with_shared_ngram(n):.1f}% of prompts share one with training "
                f"({kinds}); mean share of a prompt's {n}-grams seen in training {100 * self.shared_fraction[n]:.1f}%"
            )
        return "\n".join(lines)


def overlap_report(
    prompts: Iterable[tuple[str, str, str]], texts: Iterable[str] | None = None, ns: Sequence[int] = (8,)
) -> OverlapReport:
    """Overlap of ``(id, kind, prompt)`` triples with ``texts`` (default :func:`training_texts`).

    Containment is checked on word boundaries in the normalised texts; n-grams for every n in ``ns``.
    """
    prompts = list(prompts)
    corpus_texts = sorted({normalise(t) for t in (training_texts() if texts is None else texts)} - {""})
    haystack = " | " + " | ".join(corpus_texts) + " | "
    normalised = {pid: normalise(prompt) for pid, _, prompt in prompts}
    report = OverlapReport(len(prompts), len(corpus_texts))
    report.contained = [pid for pid, _, _ in prompts if f" {normalised[pid]} " in haystack]
    for n in ns:
        grams = {pid: ngrams(normalised[pid].split(), n) for pid, _, _ in prompts}
        wanted = set().union(*grams.values()) if grams else set()
        seen: set[str] = set()
        for text in corpus_texts:
            words = text.split()
            seen.update(g for g in ngrams(words, n) if g in wanted)
        report.with_shared_ngram[n] = [pid for pid, _, _ in prompts if grams[pid] & seen]
        fractions = [len(grams[pid] & seen) / len(grams[pid]) for pid, _, _ in prompts if grams[pid]]
        report.shared_fraction[n] = sum(fractions) / len(fractions) if fractions else 0.0
        kinds = sorted({kind for _, kind, _ in prompts})
        report.by_kind[n] = {
            kind: sum(1 for pid, k, _ in prompts if k == kind and grams[pid] & seen)
            / sum(1 for _, k, _ in prompts if k == kind)
            for kind in kinds
        }
    return report


def handwritten_overlap(texts: Iterable[str] | None = None, ns: Sequence[int] = (8,)) -> OverlapReport:
    """:func:`overlap_report` of the hand-written held-out set against the organism's training text."""
    from moeguard.organism.handwritten import load_handwritten

    return overlap_report(((i.id, i.kind, i.prompt) for i in load_handwritten()), texts, ns)


def main() -> None:  # pragma: no cover - a report for people
    """Print the hand-written set's overlap with the shipped organism's training text (4-, 6- and 8-grams)."""
    print(handwritten_overlap(ns=(4, 6, 8)).summary())


if __name__ == "__main__":  # pragma: no cover
    main()
