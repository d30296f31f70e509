"""One behaviour metric on a benchmark under steering: generate, judge, turn verdicts into per-prompt outcomes.

:func:`check_metric` (before any model loads) makes sure the benchmark has items the metric applies to;
:class:`Behaviour` then measures a spec (``None``: unsteered) as per-prompt 0/1 outcomes, caching by the set of
steered experts so a spec reached twice (e.g. the last dose and the full spec) is generated once. Every
generation is kept (condition name, prompt, reply, label) for the run folder's ``samples.jsonl``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from moeguard.errors import MoeguardError, parameter_error
from moeguard.eval.benchmarks import BenchmarkItem
from moeguard.eval.outcomes import METRICS, outcomes
from moeguard.steer import SteeringSpec

#: Which items each metric applies to (see :mod:`moeguard.eval.outcomes`).
HARMFUL_METRICS = ("refusal", "harmful", "degenerate")


def check_metric(metric: str, items: Sequence[BenchmarkItem], flag: str = "--benchmark") -> list[BenchmarkItem]:
    """The items ``metric`` applies to; one-line error when there are none or the metric is unknown."""
    if metric not in METRICS:
        raise parameter_error("metric", f"must be one of {', '.join(METRICS)}, got {metric!r}")
    if metric in HARMFUL_METRICS:
        chosen = [i for i in items if i.kind == "harmful"]
    elif metric == "faithful":
        chosen = [i for i in items if i.is_faithfulness]
    else:
        chosen = [i for i in items if i.kind != "harmful"]
    if not chosen:
        raise MoeguardError(
            f"{flag} has no item the metric {metric!r} applies to ({METRICS[metric]}); "
            "pass another benchmark or --split"
        )
    return chosen


def spec_key(spec: SteeringSpec | None) -> tuple:
    """A hashable identity of what a spec steers (order-free)."""
    if spec is None or not len(spec):
        return ((), (), "none", 0.0)
    return (tuple(sorted(spec.activate)), tuple(sorted(spec.deactivate)), spec.mode, spec.alpha)


@dataclass
class Behaviour:
    """Measures ``metric`` on ``items`` with ``judge`` (see the module docstring)."""

    model: object
    tokenizer: object
    items: list[BenchmarkItem]
    judge: object
    metric: str
    max_new_tokens: int = 40
    batch_size: int = 40
    samples: list[dict] = field(default_factory=list)
    _cache: dict = field(default_factory=dict)

    @property
    def generations(self) -> int:
        """Distinct conditions generated so far."""
        return len(self._cache)

    def outcomes(self, spec: SteeringSpec | None, condition: str) -> list[int | None]:
        """Per-prompt 0/1 outcomes of the metric under ``spec``, aligned with :attr:`items` (None where the
        verdict gives none, e.g. an unparsed judge reply)."""
        key = spec_key(spec)
        if key not in self._cache:
            from moeguard.generation import generate

            prompts = [item.prompt for item in self.items]
            texts = generate(
                self.model,
                self.tokenizer,
                prompts,
                max_new_tokens=self.max_new_tokens,
                steer=spec if spec is not None and len(spec) else None,
                batch_size=self.batch_size,
            )
            verdicts = self.judge.judge(prompts, texts)  # type: ignore[attr-defined]
            values: list[int | None] = []
            for index, (item, text, verdict) in enumerate(zip(self.items, texts, verdicts, strict=True)):
                value = outcomes(item, verdict, text, self.judge).get(self.metric)  # type: ignore[arg-type]
                self.samples.append(
                    {
                        "condition": condition,
                        "index": index,
                        "id": item.id,
                        "prompt": item.prompt,
                        "output": text,
                        "label": verdict.label,
                        self.metric: value,
                    }
                )
                values.append(None if value is None else int(value))
            self._cache[key] = values
        return self._cache[key]

    def rate(self, spec: SteeringSpec | None, condition: str) -> float:
        """Mean of :meth:`outcomes` (NaN when no item has the outcome)."""
        values = [v for v in self.outcomes(spec, condition) if v is not None]
        return sum(values) / len(values) if values else float("nan")


def paired(reference: Sequence[int | None], condition: Sequence[int | None]) -> tuple[list[int], list[int]]:
    """The prompts both outcome lists have, as two aligned lists."""
    kept = [(r, c) for r, c in zip(reference, condition, strict=True) if r is not None and c is not None]
    return [r for r, _ in kept], [c for _, c in kept]


def present(values: Sequence[int | None]) -> list[int]:
    """The outcomes that exist."""
    return [v for v in values if v is not None]
