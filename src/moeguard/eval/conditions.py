"""Behaviour under steering conditions: generate once per (condition, prompt set), judge, tabulate.

Every effect is reported next to a control: random experts of the same per-layer counts, several seeds.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from moeguard.chat import Prompt
from moeguard.generation import generate
from moeguard.steer import SteeringSpec

Judge = Callable[[Sequence[str]], float]


@dataclass
class ConditionScore:
    """A judged rate of one condition on one prompt set (``runs`` > 1: mean ± sd over control seeds)."""

    condition: str
    prompt_set: str
    metric: str
    mean: float
    sd: float = 0.0
    runs: int = 1
    n_prompts: int = 0
    experts: int = 0

    def cell(self) -> str:
        """Percent, with ± sd for multi-seed controls."""
        text = f"{100 * self.mean:.1f}"
        return f"{text} ± {100 * self.sd:.1f}" if self.runs > 1 else text

    @property
    def column(self) -> str:
        """Table column name: the metric on the prompt set."""
        return f"{self.metric}: {self.prompt_set}"


def score_conditions(
    model,
    tokenizer,
    prompt_sets: dict[str, Sequence[Prompt]],
    conditions: dict[str, SteeringSpec | None | list[SteeringSpec]],
    judges: dict[str, Judge],
    max_new_tokens: int = 40,
    batch_size: int = 40,
    progress: bool = False,
) -> tuple[list[ConditionScore], dict[str, dict[str, list[str]]]]:
    """Generate once per (condition, spec, prompt set) and apply every judge.

    A condition given as a list of specs (the random control over seeds) is reported as mean ± sd.
    Returns the scores and each condition's generations (first spec of a list). ``progress`` shows one bar
    over all prompts to generate (stderr).
    """
    from moeguard.progress import maybe_progress

    scores: list[ConditionScore] = []
    generations: dict[str, dict[str, list[str]]] = {}
    total = sum(len(v) if isinstance(v, list) else 1 for v in conditions.values()) * sum(
        len(p) for p in prompt_sets.values()
    )
    with maybe_progress(progress) as bar:
        task = bar.add_task("generating", total=total)
        for condition, value in conditions.items():
            _score_condition(
                model,
                tokenizer,
                prompt_sets,
                condition,
                value,
                judges,
                max_new_tokens,
                batch_size,
                scores,
                generations,
                bar,
                task,
            )
    return scores, generations


def _score_condition(
    model, tokenizer, prompt_sets, condition, value, judges, max_new_tokens, batch_size, scores, generations, bar, task
) -> None:
    """Generate and judge one condition (every spec of a control list) on every prompt set."""
    specs = value if isinstance(value, list) else [value]
    experts = len(specs[0]) if specs[0] is not None else 0
    generations[condition] = {}
    for name, prompts in prompt_sets.items():
        rates: dict[str, list[float]] = {metric: [] for metric in judges}
        for spec in specs:
            texts = generate(
                model, tokenizer, list(prompts), max_new_tokens=max_new_tokens, steer=spec, batch_size=batch_size
            )
            bar.update(task, advance=len(prompts), description=f"generating: {condition}")
            generations[condition].setdefault(name, texts)
            for metric, judge in judges.items():
                rates[metric].append(judge(texts))
        for metric, values in rates.items():
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            scores.append(
                ConditionScore(
                    condition, name, metric, statistics.fmean(values), sd, len(values), len(prompts), experts
                )
            )


_NUMBER_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
_WORD = re.compile(r"\b(?:" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)
_DIGIT = re.compile(r"\b\d+\b")


def count_style(text: str) -> str:
    """``digits`` ("1, 2, 3"), ``words`` ("one, two, three"), ``mixed`` or ``other``."""
    digits, words = len(_DIGIT.findall(text)), len(_WORD.findall(text))
    if digits >= 2 and words == 0:
        return "digits"
    if words >= 2 and digits == 0:
        return "words"
    return "mixed" if digits and words else "other"


def share_of_style(style: str) -> Judge:
    """A judge: the share of texts whose :func:`count_style` is ``style``."""

    def judge(texts: Sequence[str]) -> float:
        return sum(count_style(t) == style for t in texts) / len(texts) if texts else 0.0

    return judge
