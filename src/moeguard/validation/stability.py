"""Stability of a selection: re-select on cluster resamples of the pairs (seeds) and on disjoint halves.

Both reuse one detection's per-pair counts (no further model passes). A *cluster* is a set of identical pairs
(:attr:`DetectionResult.clusters`): resamples draw distinct clusters with replacement, halves split the distinct
clusters in two, so identical pairs never land on both sides. Each resample or half is selected with the same
rule as the spec (:class:`SelectionRule`: sizes and sign), and compared with the full-data selection by Jaccard
overlap of ``(layer, expert, role)``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from moeguard.detect import DetectionResult
from moeguard.errors import MoeguardError
from moeguard.steer import SteeringSpec
from moeguard.validation.stats import jaccard, selection_frequency, spec_members


@dataclass(frozen=True)
class SelectionRule:
    """How the spec was selected: ``n_activate`` / ``n_deactivate`` experts, signs flipped with ``reverse``."""

    n_activate: int
    n_deactivate: int
    reverse: bool

    @classmethod
    def infer(cls, spec: SteeringSpec, result: DetectionResult) -> SelectionRule:
        """The spec's sizes; ``reverse`` when its activated experts lean to side B and its deactivated to A
        (``sum risk_diff[activated] - sum risk_diff[deactivated] < 0``)."""
        position = {layer: i for i, layer in enumerate(result.layers)}
        diff = result.risk_diff

        def rd(layer: int, expert: int) -> float:
            if layer not in position:
                raise MoeguardError(
                    f"the spec steers layer {layer}, which the detection has no routing for; "
                    "pass pairs of the spec's model"
                )
            return float(diff[position[layer], expert])

        lean = sum(rd(la, e) for la, e in spec.activate) - sum(rd(la, e) for la, e in spec.deactivate)
        return cls(len(spec.activate), len(spec.deactivate), lean < 0)

    def select(self, result: DetectionResult) -> SteeringSpec:
        return result.select(self.n_activate, self.n_deactivate, reverse=self.reverse)


def _members_of_clusters(result: DetectionResult) -> dict[int, list[int]]:
    if not result.has_pairs:
        raise MoeguardError("stability needs per-pair counts; run detection on pairs (not pooled counts)")
    members: dict[int, list[int]] = {}
    assert result.clusters is not None
    for index, cluster in enumerate(result.clusters.tolist()):
        members.setdefault(cluster, []).append(index)
    return members


def subset(result: DetectionResult, indices: list[int]) -> DetectionResult:
    """A detection result of the pairs ``indices`` (repeats allowed), without bootstrap."""
    idx = torch.as_tensor(indices, dtype=torch.long)
    assert result.pair_counts_a is not None and result.pair_counts_b is not None
    assert result.pair_tokens_a is not None and result.pair_tokens_b is not None
    return DetectionResult.from_pairs(
        result.layers,
        result.num_experts,
        result.top_k,
        result.pair_counts_a[idx],
        result.pair_tokens_a[idx],
        result.pair_counts_b[idx],
        result.pair_tokens_b[idx],
        model=result.model,
    )


@dataclass
class StabilityReport:
    """Selections on resamples and halves, their overlaps with the full-data selection and each other."""

    rule: SelectionRule
    full: SteeringSpec
    spec_vs_full: float
    resample_jaccard: list[float]
    half_jaccard: list[float]
    half_vs_full: list[float]
    resample_frequency: dict
    half_frequency: dict
    distinct_pairs: int

    @staticmethod
    def _mean(values: list[float]) -> float | None:
        return sum(values) / len(values) if values else None

    def to_dict(self) -> dict:
        return {
            "rule": {
                "n_activate": self.rule.n_activate,
                "n_deactivate": self.rule.n_deactivate,
                "reverse": self.rule.reverse,
            },
            "distinct_pairs": self.distinct_pairs,
            "full_selection": self.full.to_dict(),
            "spec_vs_full_jaccard": self.spec_vs_full,
            "resamples": len(self.resample_jaccard),
            "resample_jaccard_mean": self._mean(self.resample_jaccard),
            "resample_jaccard_min": min(self.resample_jaccard, default=None),
            "splits": len(self.half_jaccard),
            "half_jaccard_mean": self._mean(self.half_jaccard),
            "half_jaccard_min": min(self.half_jaccard, default=None),
            "half_vs_full_jaccard_mean": self._mean(self.half_vs_full),
            "resample_jaccard": self.resample_jaccard,
            "half_jaccard": self.half_jaccard,
        }


def selection_stability(
    result: DetectionResult, spec: SteeringSpec, resamples: int = 20, splits: int = 10, seed: int = 0
) -> StabilityReport:
    """Stability of ``spec``'s selection rule on ``result``'s pairs (see the module docstring)."""
    rule = SelectionRule.infer(spec, result)
    members = _members_of_clusters(result)
    clusters = sorted(members)
    full = rule.select(result)
    full_set = spec_members(full)
    resample_sets, resample_j = [], []
    for s in range(resamples):
        rng = random.Random(seed * 100_003 + s)
        drawn = [rng.choice(clusters) for _ in clusters]
        chosen = spec_members(rule.select(subset(result, [i for c in drawn for i in members[c]])))
        resample_sets.append(chosen)
        resample_j.append(jaccard(chosen, full_set))
    half_sets: list[set] = []
    half_j: list[float] = []
    half_full: list[float] = []
    if splits and len(clusters) >= 2:
        for s in range(splits):
            rng = random.Random(seed * 100_019 + s + 7)
            order = clusters[:]
            rng.shuffle(order)
            cut = len(order) // 2
            halves = [order[:cut], order[cut:]]
            picked = [spec_members(rule.select(subset(result, [i for c in h for i in members[c]]))) for h in halves]
            half_sets += picked
            half_j.append(jaccard(picked[0], picked[1]))
            half_full += [jaccard(c, full_set) for c in picked]
    return StabilityReport(
        rule,
        full,
        jaccard(spec_members(spec), full_set),
        resample_j,
        half_j,
        half_full,
        selection_frequency(resample_sets),
        selection_frequency(half_sets),
        len(clusters),
    )
