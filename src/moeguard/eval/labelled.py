"""The shipped hand-labelled judge sets and per-category accuracy of a judge on them.

``python -m moeguard.eval.labelled`` prints the accuracy tables of the offline judges (tuning and held-out
splits). See ``eval/data/README.md`` for the label rules.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources

from moeguard.errors import MoeguardError

REFUSAL_SET = "refusal_labelled.jsonl"
ORGANISM_SET = "organism_labelled.jsonl"
#: 40 real generations of the shipped organism (held-out prompts), hand-labelled; no split.
ORGANISM_REAL_SET = "organism_real_labelled.jsonl"
#: 160 real generations of the organism (v2) on the hand-written held-out set (baseline and steered), hand-labelled;
#: ``tune``/``heldout`` split (every third row held out before any judge rule was changed).
ORGANISM_HANDWRITTEN_SET = "organism_handwritten_labelled.jsonl"


def load_labelled(name: str = REFUSAL_SET, split: str | None = None) -> list[dict]:
    """Rows of a shipped labelled set (``split``: ``tune``, ``heldout`` or None for both)."""
    path = resources.files("moeguard") / "eval" / "data" / name
    if not path.is_file():
        raise MoeguardError(
            f"no labelled set {name!r} in moeguard/eval/data; use {REFUSAL_SET}, {ORGANISM_SET}, {ORGANISM_REAL_SET} "
            f"or {ORGANISM_HANDWRITTEN_SET}"
        )
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if split is not None:
        if split not in ("tune", "heldout"):
            raise MoeguardError(f"unknown split {split!r}; use tune, heldout or None")
        rows = [r for r in rows if r.get("split") == split]
    return rows


@dataclass(frozen=True)
class Accuracy:
    """Correct / total for one group of rows."""

    group: str
    correct: int
    total: int

    @property
    def value(self) -> float:
        """Share correct (0.0 for an empty group)."""
        return self.correct / self.total if self.total else 0.0


def accuracy_by(
    rows: Sequence[dict], predicted: Sequence[object], group: str = "category", truth: str = "label"
) -> list[Accuracy]:
    """Accuracy per value of ``group`` (first-seen order), then an ``overall`` row."""
    if len(rows) != len(predicted):
        raise MoeguardError(f"{len(rows)} rows but {len(predicted)} predictions; judge every row once")
    groups: dict[str, list[int]] = {}
    for row, pred in zip(rows, predicted, strict=True):
        cell = groups.setdefault(str(row[group]), [0, 0])
        cell[0] += pred == row[truth]
        cell[1] += 1
    out = [Accuracy(name, c, t) for name, (c, t) in groups.items()]
    out.append(Accuracy("overall", sum(a.correct for a in out), sum(a.total for a in out)))
    return out


def table(results: dict[str, list[Accuracy]]) -> str:
    """A Markdown table: one row per group, one column per named result (e.g. per split)."""
    names = list(results)
    groups = [a.group for a in results[names[0]]]
    lines = ["| group | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for g in groups:
        cells = []
        for name in names:
            acc = next((a for a in results[name] if a.group == g), None)
            cells.append(f"{100 * acc.value:.1f}% ({acc.correct}/{acc.total})" if acc else "-")
        lines.append(f"| {g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def split_tables(name: str, group: str, judge: Callable[[list[dict]], list[str]], truth: str = "label") -> str:
    """The accuracy table of ``judge`` (rows → predicted labels) on both splits and on the whole set."""
    results = {}
    for split in ("tune", "heldout", None):
        rows = load_labelled(name, split)
        results[split or "all"] = accuracy_by(rows, judge(rows), group, truth)
    return table(results)


def _main() -> None:  # pragma: no cover - a report printer
    from moeguard.eval.judges import RefusalJudge
    from moeguard.eval.organism_judge import CountingJudge, OrganismJudge

    refusal = RefusalJudge()
    print("Offline refusal judge (refusal_labelled.jsonl), accuracy by category:\n")
    print(
        split_tables(
            REFUSAL_SET,
            "category",
            lambda rows: [v.label for v in refusal.judge([r["prompt"] for r in rows], [r["response"] for r in rows])],
        )
    )
    organism = OrganismJudge()
    print("\nOrganism judge (organism_labelled.jsonl), accuracy by true label:\n")
    print(
        split_tables(
            ORGANISM_SET,
            "label",
            lambda rows: [v.label for v in organism.judge([r["prompt"] for r in rows], [r["response"] for r in rows])],
        )
    )
    print("\nOrganism judge, accuracy by kind:\n")
    print(
        split_tables(
            ORGANISM_SET,
            "kind",
            lambda rows: [v.label for v in organism.judge([r["prompt"] for r in rows], [r["response"] for r in rows])],
        )
    )
    for group in ("label", "kind"):
        print(f"\nOrganism judge on real generations ({ORGANISM_HANDWRITTEN_SET}), accuracy by {group}:\n")
        print(
            split_tables(
                ORGANISM_HANDWRITTEN_SET,
                group,
                lambda rows: [
                    v.label for v in organism.judge([r["prompt"] for r in rows], [r["response"] for r in rows])
                ],
            )
        )
    counting = CountingJudge()
    for field in ("correct", "style", "range_ok"):
        print(f"\nCounting judge, `{field}` accuracy on counting rows (both organism sets):\n")
        results = {}
        for split in ("tune", "heldout", None):
            rows = [
                r
                for name in (ORGANISM_SET, ORGANISM_HANDWRITTEN_SET)
                for r in load_labelled(name, split)
                if r["kind"] == "counting"
            ]
            verdicts = counting.judge([r["prompt"] for r in rows], [r["response"] for r in rows])
            if field == "correct":
                pred = [v.label == "correct" for v in verdicts]
            else:
                pred = [v.details[field] for v in verdicts]
            results[split or "all"] = accuracy_by(rows, pred, "kind", field)
        print(table(results))


if __name__ == "__main__":  # pragma: no cover
    _main()
