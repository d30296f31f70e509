"""The arithmetic of causal validation, without a model (hand-checkable; see ``tests/validation/test_stats.py``).

A *ranking* is a list of :class:`Ranked` experts (decoder layer, expert, role ``activate``/``deactivate``); the
spec at dose ``d`` steers its first ``d`` entries. A *matched random ranking* replaces the ``j``-th ranked expert
of each layer by the ``j``-th of a seeded random draw of that layer's experts (same role), so every prefix of
it steers as many experts per layer, in the same roles, as the same prefix of the ranking.

>>> doses_for(8)
[1, 2, 4, 8]
>>> permutation_p(0.0, [0.9, 0.8, 0.0], "lower")      # (1 + one random set at least as low) / (3 + 1)
0.5
>>> loo_attribution(full=0.0, dropped=[0.5, 0.0])     # effect lost when each expert is dropped
[-0.5, 0.0]
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from moeguard.errors import MoeguardError, parameter_error
from moeguard.steer import SteeringSpec

ACTIVATE, DEACTIVATE = "activate", "deactivate"
DIRECTIONS = ("lower", "higher")


@dataclass(frozen=True)
class Ranked:
    """One expert of a ranking: decoder ``layer``, ``expert`` and its ``role`` (activate or deactivate)."""

    layer: int
    expert: int
    role: str

    def to_list(self) -> list:
        return [self.layer, self.expert, self.role]


def ranking_of(spec: SteeringSpec, scores: dict[tuple[int, int], float] | None = None) -> list[Ranked]:
    """The spec's experts in ranking order: by descending ``|scores|`` when given (stable), otherwise the spec's
    own order (``select_experts`` writes each list in ranking order), activated experts first."""
    ranked = [Ranked(la, e, ACTIVATE) for la, e in spec.activate] + [
        Ranked(la, e, DEACTIVATE) for la, e in spec.deactivate
    ]
    if scores is not None:
        ranked.sort(key=lambda r: -abs(scores.get((r.layer, r.expert), 0.0)))
    return ranked


def spec_of(ranked: Iterable[Ranked], like: SteeringSpec | None = None) -> SteeringSpec:
    """A steering spec of ``ranked`` (mode, alpha and model taken from ``like``)."""
    ranked = list(ranked)
    return SteeringSpec(
        activate=[(r.layer, r.expert) for r in ranked if r.role == ACTIVATE],
        deactivate=[(r.layer, r.expert) for r in ranked if r.role == DEACTIVATE],
        mode=like.mode if like else "steermoe",
        alpha=like.alpha if like else 1.0,
        model=like.model if like else None,
    )


def doses_for(n: int, given: Sequence[int] | None = None) -> list[int]:
    """Doses ``1, 2, 4, ...`` below ``n``, then ``n`` itself; or ``given`` (sorted, deduplicated, each in 1..n)."""
    if n < 1:
        raise MoeguardError("the spec steers no expert; pass a spec with at least one activated or deactivated expert")
    if given:
        bad = [d for d in given if not 1 <= d <= n]
        if bad:
            raise parameter_error("doses", f"must lie in 1..{n} (the spec's experts), got {bad[0]}")
        return sorted(set(given))
    out, d = [], 1
    while d < n:
        out.append(d)
        d *= 2
    return out + [n]


def matched_random_ranking(ranked: Sequence[Ranked], num_experts: int, seed: int) -> list[Ranked]:
    """A seeded random ranking matched per layer to ``ranked`` (see the module docstring).

    Each layer draws ``count`` distinct experts uniformly from all ``num_experts`` (the selected ones included,
    as :meth:`SteeringSpec.random_like` does); layers are drawn in ascending order from one ``random.Random(seed)``.
    """
    per_layer: dict[int, int] = {}
    for r in ranked:
        per_layer[r.layer] = per_layer.get(r.layer, 0) + 1
    rng = random.Random(seed)
    draws = {layer: rng.sample(range(num_experts), count) for layer, count in sorted(per_layer.items())}
    used = dict.fromkeys(per_layer, 0)
    out = []
    for r in ranked:
        out.append(Ranked(r.layer, draws[r.layer][used[r.layer]], r.role))
        used[r.layer] += 1
    return out


def permutation_p(selected: float, random_values: Sequence[float], direction: str) -> float:
    """Set-level permutation p-value of "the selected set beats random sets of its shape".

    Under the null the selected set is one more draw of the random sets, so its rank among the ``N + 1`` values is
    uniform: ``p = (1 + #{random values at least as extreme}) / (N + 1)``, where at least as extreme means
    ``<= selected`` for ``direction="lower"`` and ``>= selected`` for ``"higher"`` (ties count against the
    selection). The smallest attainable p is ``1 / (N + 1)``.
    """
    check_direction(direction)
    if not random_values:
        raise parameter_error("random_sets", "must be at least 1 for a permutation p-value")
    if direction == "lower":
        hits = sum(1 for r in random_values if r <= selected)
    else:
        hits = sum(1 for r in random_values if r >= selected)
    return (1 + hits) / (len(random_values) + 1)


def check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise parameter_error("direction", f"must be 'lower', 'higher' or 'auto', got {direction!r}")


def auto_direction(baseline: float, full: float) -> str:
    """The direction of the full spec's effect (``lower`` when it does not raise the metric)."""
    return "higher" if full > baseline else "lower"


def beats_all(selected: float, random_values: Sequence[float], direction: str) -> bool:
    """Whether ``selected`` is strictly beyond every random value in ``direction``."""
    check_direction(direction)
    if direction == "lower":
        return all(selected < r for r in random_values)
    return all(selected > r for r in random_values)


def beats_random_from(doses: Sequence[int], beats: Sequence[bool]) -> int | None:
    """The smallest dose from which the selection beats every random set at every larger dose too (``doses``
    ascending, ``beats`` per dose); None when it does not beat them at the largest dose."""
    if len(doses) != len(beats):
        raise MoeguardError(f"{len(doses)} doses but {len(beats)} outcomes")
    start = None
    for dose, beat in zip(reversed(doses), reversed(beats), strict=True):
        if not beat:
            break
        start = dose
    return start


def loo_attribution(full: float, dropped: Sequence[float]) -> list[float]:
    """Leave-one-out attribution of each selected expert: the effect lost when it is dropped from the spec.

    With ``effect = full - baseline`` and ``effect_without_j = dropped[j] - baseline``, the attribution is
    ``effect - effect_without_j = full - dropped[j]`` (it has the effect's sign when the expert contributes).
    """
    return [full - d for d in dropped]


@dataclass(frozen=True)
class LooSummary:
    """The full effect, the sum of LOO attributions and how far the sum is from the effect."""

    effect: float
    attribution_sum: float

    @property
    def gap(self) -> float:
        """``attribution_sum - effect`` (0 when the attributions add up exactly)."""
        return self.attribution_sum - self.effect

    @property
    def ratio(self) -> float | None:
        """``attribution_sum / effect`` (None for a zero effect)."""
        return None if self.effect == 0 else self.attribution_sum / self.effect

    def to_dict(self) -> dict:
        return {"effect": self.effect, "attribution_sum": self.attribution_sum, "gap": self.gap, "ratio": self.ratio}


def loo_summary(baseline: float, full: float, dropped: Sequence[float]) -> LooSummary:
    """:class:`LooSummary` of a spec whose full metric is ``full`` and ``dropped[j]`` without expert ``j``."""
    return LooSummary(full - baseline, sum(loo_attribution(full, dropped)))


def jaccard(a: Iterable, b: Iterable) -> float:
    """``|a ∩ b| / |a ∪ b|`` (1.0 for two empty sets)."""
    sa, sb = set(a), set(b)
    union = sa | sb
    return 1.0 if not union else len(sa & sb) / len(union)


def spec_members(spec: SteeringSpec) -> set[tuple[int, int, str]]:
    """The spec as a set of ``(layer, expert, role)``."""
    return {(la, e, ACTIVATE) for la, e in spec.activate} | {(la, e, DEACTIVATE) for la, e in spec.deactivate}


def selection_frequency(selections: Sequence[set]) -> dict:
    """How often each member appears over ``selections`` (share in [0, 1])."""
    counts: dict = {}
    for chosen in selections:
        for member in chosen:
            counts[member] = counts.get(member, 0) + 1
    return {m: c / len(selections) for m, c in counts.items()} if selections else {}
