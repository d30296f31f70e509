"""SteerMoE detection (DESIGN §1.2–1.3): paired-contrast expert scores, statistics and selection.

>>> result = detect_experts(model, tokenizer, pairs, batch_size=8, bootstrap=100, seed=0)
>>> result.risk_diff                 # [moe_layers, experts]: rate_A - rate_B on target-span tokens
>>> result.q_values                  # Benjamini-Hochberg over all (layer, expert) two-proportion tests
>>> spec = select_experts(result, n_activate=5, n_deactivate=0)    # a SteeringSpec

Streaming: the pairs are consumed batch by batch and only ``[layers, experts]`` counts plus
``[resamples, layers, experts]`` bootstrap accumulators are kept, so memory does not grow with the
number of pairs. The bootstrap is a Poisson bootstrap over pairs: pair ``i`` gets weight
``w_b(i) ~ Poisson(1)`` in resample ``b`` from a generator seeded by ``(seed, i)``, so results are
identical for every batch size. All counts are integers, so accumulation is exact.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from itertools import islice

import numpy as np
import torch
from torch import nn

from moeguard.adapters import MoEModel, inspect_moe
from moeguard.data import Pair
from moeguard.errors import MoeguardError, parameter_error
from moeguard.pair_routing import route_pairs
from moeguard.progress import progress_bar
from moeguard.routing.trace import RoutingTrace
from moeguard.steer import SteeringSpec

__all__ = [
    "DetectionResult",
    "benjamini_hochberg",
    "detect_experts",
    "poisson_weights",
    "select_experts",
    "two_proportion_p_values",
]


# ---------------------------------------------------------------------------------------- statistics
def two_proportion_p_values(
    hits_a: torch.Tensor, tokens_a: int, hits_b: torch.Tensor, tokens_b: int
) -> torch.Tensor:
    """Two-sided pooled two-proportion z-test per entry: H0 rate_A == rate_B.

    ``z = (p_A - p_B) / sqrt(p (1 - p) (1/n_A + 1/n_B))`` with the pooled ``p = (x_A + x_B) / (n_A + n_B)``;
    ``p-value = erfc(|z| / sqrt(2))``. Entries with ``p in {0, 1}`` (no variance) get p-value 1.
    Tokens of one conversation are not independent, so treat the p-values as a ranking aid that is
    optimistic rather than as exact error rates.
    """
    if tokens_a <= 0 or tokens_b <= 0:
        raise MoeguardError("both sides need at least one counted token for the two-proportion test")
    x_a = hits_a.double().reshape(-1).tolist()
    x_b = hits_b.double().reshape(-1).tolist()
    out = []
    for a, b in zip(x_a, x_b, strict=True):
        pooled = (a + b) / (tokens_a + tokens_b)
        variance = pooled * (1.0 - pooled) * (1.0 / tokens_a + 1.0 / tokens_b)
        if variance <= 0.0:
            out.append(1.0)
            continue
        z = (a / tokens_a - b / tokens_b) / math.sqrt(variance)
        out.append(math.erfc(abs(z) / math.sqrt(2.0)))
    return torch.tensor(out, dtype=torch.float64).reshape(hits_a.shape)


def benjamini_hochberg(p_values: torch.Tensor) -> torch.Tensor:
    """Benjamini–Hochberg q-values over all entries: ``q_(i) = min_{j >= i} p_(j) m / j``, capped at 1."""
    flat = p_values.double().reshape(-1)
    m = flat.numel()
    if m == 0:
        return flat.reshape(p_values.shape)
    order = torch.sort(flat, stable=True).indices
    ranked = flat[order] * m / torch.arange(1, m + 1, dtype=torch.float64)
    monotone = torch.flip(torch.cummin(torch.flip(ranked, [0]), dim=0).values, [0]).clamp(max=1.0)
    q = torch.empty_like(flat)
    q[order] = monotone
    return q.reshape(p_values.shape)


def poisson_weights(seed: int, indices: Iterable[int], resamples: int) -> torch.Tensor:
    """``[resamples, len(indices)]`` int64 Poisson(1) bootstrap weights; column ``j`` depends only on
    ``(seed, indices[j])``."""
    if seed < 0:
        raise MoeguardError(f"seed must be non-negative, got {seed}")
    columns = [np.random.default_rng([seed, int(i)]).poisson(1.0, resamples) for i in indices]
    if not columns:
        return torch.zeros(resamples, 0, dtype=torch.long)
    return torch.from_numpy(np.stack(columns, axis=1).astype(np.int64))


def _expand(tokens: torch.Tensor | int, like: torch.Tensor) -> torch.Tensor:
    tokens = torch.as_tensor(tokens, dtype=torch.long)
    while tokens.dim() < like.dim():
        tokens = tokens.unsqueeze(-1)
    return tokens


def _rates(counts: torch.Tensor, tokens: torch.Tensor | int) -> torch.Tensor:
    return counts.double() / _expand(tokens, counts).double()  # 0 tokens -> nan; selects nothing


def _risk_diff(
    counts_a: torch.Tensor, tokens_a: torch.Tensor | int, counts_b: torch.Tensor, tokens_b: torch.Tensor | int
) -> torch.Tensor:
    """``x_A/n_A - x_B/n_B`` as ``(x_A n_B - x_B n_A) / (n_A n_B)``: one rounding of an exact integer
    ratio, so equal differences compare equal (stable ties) instead of differing in the last bit."""
    n_a, n_b = _expand(tokens_a, counts_a), _expand(tokens_b, counts_b)
    return (counts_a.long() * n_b - counts_b.long() * n_a).double() / (n_a * n_b).double()


# ---------------------------------------------------------------------------------------- selection core
def _top_positive(
    values: torch.Tensor, n: int, per_layer: int, allowed: torch.Tensor | None = None
) -> torch.Tensor:
    """Boolean mask ``[..., L, E]``: the ``n`` largest strictly positive entries, at most ``per_layer``
    per layer (equal to walking the global ranking and skipping full layers). Ties are broken by
    (layer, expert) order; NaN never qualifies."""
    candidates = values > 0
    if allowed is not None:
        candidates = candidates & allowed
    if n <= 0 or per_layer <= 0:
        return torch.zeros_like(candidates)
    key = torch.where(candidates, values, torch.full_like(values, -math.inf))
    order = torch.sort(key, dim=-1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(-1, order, torch.arange(values.shape[-1]).expand_as(order))
    candidates = candidates & (rank < per_layer)
    key = torch.where(candidates, values, torch.full_like(values, -math.inf)).flatten(-2)
    top = torch.sort(key, dim=-1, descending=True, stable=True).indices[..., : min(n, key.shape[-1])]
    chosen = torch.zeros_like(key, dtype=torch.bool)
    chosen.scatter_(-1, top, True)
    return (chosen & candidates.flatten(-2)).reshape(values.shape)


# ---------------------------------------------------------------------------------------- result
@dataclass
class DetectionResult:
    """Counts of top-k hits on target-span tokens for sides A and B, plus bootstrap accumulators.

    Row ``p`` of every ``[L, E]`` tensor is decoder layer ``layers[p]``. ``boot_*`` hold the
    Poisson-weighted counts of each resample (``None`` without bootstrap).
    """

    layers: list[int]
    num_experts: int
    top_k: int
    counts_a: torch.Tensor
    counts_b: torch.Tensor
    tokens_a: int
    tokens_b: int
    pairs: int = 0
    boot_counts_a: torch.Tensor | None = None
    boot_counts_b: torch.Tensor | None = None
    boot_tokens_a: torch.Tensor | None = None
    boot_tokens_b: torch.Tensor | None = None
    seed: int = 0
    model: str | None = None
    data_sha256: str | None = None

    # ------------------------------------------------------------------ scores
    @property
    def rate_a(self) -> torch.Tensor:
        """``[L, E]`` share of A target tokens whose top-k contains the expert."""
        return _rates(self.counts_a, self.tokens_a)

    @property
    def rate_b(self) -> torch.Tensor:
        """``[L, E]`` share of B target tokens whose top-k contains the expert."""
        return _rates(self.counts_b, self.tokens_b)

    @property
    def risk_diff(self) -> torch.Tensor:
        """``[L, E]`` rate_A − rate_B (computed from the integer counts with a single rounding)."""
        return _risk_diff(self.counts_a, self.tokens_a, self.counts_b, self.tokens_b)

    @property
    def p_values(self) -> torch.Tensor:
        """``[L, E]`` two-sided pooled two-proportion z-test p-values."""
        return two_proportion_p_values(self.counts_a, self.tokens_a, self.counts_b, self.tokens_b)

    @property
    def q_values(self) -> torch.Tensor:
        """``[L, E]`` Benjamini–Hochberg q-values over all (layer, expert)."""
        return benjamini_hochberg(self.p_values)

    @property
    def bootstrap(self) -> int:
        """Number of bootstrap resamples (0 when none were drawn)."""
        return 0 if self.boot_counts_a is None else int(self.boot_counts_a.shape[0])

    def ranking(self) -> list[tuple[int, int]]:
        """All (decoder layer, expert) by descending |risk_diff|, ties in (layer, expert) order."""
        order = torch.sort(self.risk_diff.abs().flatten(), descending=True, stable=True).indices.tolist()
        return [(self.layers[i // self.num_experts], i % self.num_experts) for i in order]

    # ------------------------------------------------------------------ bootstrap
    def stability(
        self, n_activate: int, n_deactivate: int, reverse: bool = False, top_k: int | None = None
    ) -> torch.Tensor | None:
        """``[L, E]`` share of resamples in which the expert is selected (same rule as
        :func:`select_experts`, without the q/stability filters) in the role its full-data sign gives
        it (activate if the signed risk difference is > 0, deactivate if < 0, either if 0).
        ``None`` without bootstrap."""
        if self.bootstrap == 0:
            return None
        top_k = self.top_k if top_k is None else top_k
        sign = -1.0 if reverse else 1.0
        boot = _risk_diff(self.boot_counts_a, self.boot_tokens_a, self.boot_counts_b, self.boot_tokens_b)
        boot = sign * boot
        boot = torch.nan_to_num(boot, nan=0.0, posinf=0.0, neginf=0.0)  # empty resample sides select nothing
        act = _top_positive(boot, n_activate, top_k)
        deact = _top_positive(-boot, n_deactivate, self.num_experts - top_k)
        share_act, share_deact, share_either = (m.double().mean(0) for m in (act, deact, act | deact))
        full = sign * self.risk_diff
        return torch.where(full > 0, share_act, torch.where(full < 0, share_deact, share_either))

    # ------------------------------------------------------------------ tables and selection
    def rows(self, stability: torch.Tensor | None = None) -> list[dict]:
        """One dict per (layer, expert) in ranking order with the ``experts.csv`` columns."""
        rate_a, rate_b, diff = self.rate_a, self.rate_b, self.risk_diff
        p, q = self.p_values, self.q_values
        position = {layer: i for i, layer in enumerate(self.layers)}
        out = []
        for layer, expert in self.ranking():
            row = position[layer]
            out.append({
                "layer": layer,
                "expert": expert,
                "rate_a": float(rate_a[row, expert]),
                "rate_b": float(rate_b[row, expert]),
                "risk_diff": float(diff[row, expert]),
                "p_value": float(p[row, expert]),
                "q_value": float(q[row, expert]),
                "stability": None if stability is None else float(stability[row, expert]),
            })
        return out

    def select(self, n_activate: int, n_deactivate: int = 0, **kwargs) -> SteeringSpec:
        """Shorthand for :func:`select_experts` on this result."""
        return select_experts(self, n_activate, n_deactivate, **kwargs)


def check_selection(
    n_activate: int,
    n_deactivate: int = 0,
    min_stability: float | None = None,
    max_q: float | None = None,
    bootstrap: int | None = None,
) -> None:
    """Validate selection settings before any work (one-line errors naming the parameter)."""
    if n_activate < 0:
        raise parameter_error("n_activate", f"must be non-negative, got {n_activate}")
    if n_deactivate < 0:
        raise parameter_error("n_deactivate", f"must be non-negative, got {n_deactivate}")
    if max_q is not None and not 0.0 < max_q <= 1.0:
        raise parameter_error("max_q", f"must be in (0, 1], got {max_q}")
    if min_stability is not None:
        if not 0.0 <= min_stability <= 1.0:
            raise parameter_error("min_stability", f"must be in [0, 1], got {min_stability}")
        if bootstrap == 0:
            raise parameter_error("min_stability", "needs bootstrap resamples; drop it or set bootstrap >= 1")


def select_experts(
    scores: DetectionResult,
    n_activate: int,
    n_deactivate: int = 0,
    reverse: bool = False,
    min_stability: float | None = None,
    max_q: float | None = None,
    top_k: int | None = None,
) -> SteeringSpec:
    """SteerMoE selection (DESIGN §1.3) as a :class:`SteeringSpec` (model name recorded).

    The ``n_activate`` largest positive risk differences (at most ``top_k`` per layer, default the
    model's) are activated, the ``n_deactivate`` most negative ones deactivated (at most
    ``experts - top_k`` per layer, so every token keeps enough experts). ``reverse`` flips the signs
    first. ``max_q`` / ``min_stability`` drop candidates with a larger q-value / smaller bootstrap
    stability before picking; fewer experts than asked are returned when too few qualify.
    """
    check_selection(n_activate, n_deactivate, min_stability, max_q, scores.bootstrap)
    top_k = scores.top_k if top_k is None else top_k
    if not 1 <= top_k <= scores.num_experts:
        raise parameter_error("top_k", f"must be between 1 and {scores.num_experts}, got {top_k}")
    allowed = torch.ones(len(scores.layers), scores.num_experts, dtype=torch.bool)
    if max_q is not None:
        allowed &= scores.q_values <= max_q
    if min_stability is not None:
        stability = scores.stability(n_activate, n_deactivate, reverse=reverse, top_k=top_k)
        assert stability is not None  # bootstrap > 0 was checked
        allowed &= stability >= min_stability
    signed = (-1.0 if reverse else 1.0) * scores.risk_diff
    act = _top_positive(signed, n_activate, top_k, allowed)
    deact = _top_positive(-signed, n_deactivate, scores.num_experts - top_k, allowed)
    ranked = scores.ranking()
    position = {layer: i for i, layer in enumerate(scores.layers)}
    return SteeringSpec(
        activate=[(layer, e) for layer, e in ranked if act[position[layer], e]],
        deactivate=[(layer, e) for layer, e in ranked if deact[position[layer], e]],
        model=scores.model,
    )


# ---------------------------------------------------------------------------------------- streaming run
class _Accumulator:
    """Running integer counts ``[L, E]`` per side and ``[R, L, E]`` Poisson-weighted counts."""

    def __init__(self, layers: int, experts: int, resamples: int):
        self.counts = {s: torch.zeros(layers, experts, dtype=torch.long) for s in "ab"}
        self.tokens = {s: 0 for s in "ab"}
        self.boot = {s: torch.zeros(resamples, layers, experts, dtype=torch.long) for s in "ab"}
        self.boot_tokens = {s: torch.zeros(resamples, dtype=torch.long) for s in "ab"}

    def add(self, side: str, counts: torch.Tensor, tokens: torch.Tensor, weights: torch.Tensor) -> None:
        """``counts`` [b, L, E] and ``tokens`` [b] of one batch; ``weights`` [R, b]."""
        self.counts[side] += counts.sum(0)
        self.tokens[side] += int(tokens.sum())
        if weights.shape[0]:
            self.boot[side] += (weights @ counts.flatten(1)).view_as(self.boot[side])
            self.boot_tokens[side] += weights @ tokens

    def result(self, layers: list[int], num_experts: int, top_k: int, pairs: int, seed: int,
               model: str | None, data_sha256: str | None) -> DetectionResult:
        bootstrap = self.boot["a"].shape[0] > 0
        return DetectionResult(
            layers=list(layers), num_experts=num_experts, top_k=top_k,
            counts_a=self.counts["a"], counts_b=self.counts["b"], tokens_a=self.tokens["a"],
            tokens_b=self.tokens["b"], pairs=pairs,
            boot_counts_a=self.boot["a"] if bootstrap else None,
            boot_counts_b=self.boot["b"] if bootstrap else None,
            boot_tokens_a=self.boot_tokens["a"] if bootstrap else None,
            boot_tokens_b=self.boot_tokens["b"] if bootstrap else None,
            seed=seed, model=model, data_sha256=data_sha256,
        )


def check_run(batch_size: int, bootstrap: int, seed: int) -> None:
    """Validate detection settings before any work (one-line errors naming the parameter)."""
    if batch_size < 1:
        raise parameter_error("batch_size", f"must be at least 1, got {batch_size}")
    if bootstrap < 0:
        raise parameter_error("bootstrap", f"must be non-negative, got {bootstrap}")
    if seed < 0:
        raise parameter_error("seed", f"must be non-negative, got {seed}")


def detect_experts(
    model: nn.Module | MoEModel,
    tokenizer,
    pairs: Iterable[Pair | dict],
    batch_size: int = 8,
    bootstrap: int = 100,
    seed: int = 0,
    max_pairs: int | None = None,
    model_name: str | None = None,
    progress: bool = False,
    total: int | None = None,
) -> DetectionResult:
    """Score every (layer, expert) on paired conversations (SteerMoE) — streaming over ``pairs``.

    Args:
        model: a loaded transformers MoE model (or its ``MoEModel``).
        tokenizer: its (fast) tokenizer; the chat template is applied when it has one.
        pairs: :class:`~moeguard.data.Pair` objects or dicts in the pair file format; any iterable,
            consumed once, batch by batch.
        batch_size: conversations per forward call and side (results do not depend on it).
        bootstrap: Poisson-bootstrap resamples over pairs (0 disables stability).
        seed: bootstrap seed; the weights of pair ``i`` depend only on ``(seed, i)``.
        max_pairs: stop after this many pairs.
        model_name: recorded in the result and the selected spec (default: the model's name_or_path).
        progress: show a rich progress bar on stderr (``total`` sets its length; default ``len(pairs)``).
    """
    check_run(batch_size, bootstrap, seed)
    moe = model if isinstance(model, MoEModel) else inspect_moe(model)
    if model_name is None:
        model_name = getattr(getattr(moe.model, "config", None), "_name_or_path", None) or None
    if total is None and hasattr(pairs, "__len__"):
        total = len(pairs)  # type: ignore[arg-type]
    if max_pairs is not None:
        pairs = islice(pairs, max_pairs)
        total = max_pairs if total is None else min(total, max_pairs)
    accumulator = _Accumulator(len(moe.layers), moe.num_experts, bootstrap)
    digest = hashlib.sha256()
    seen = 0
    display = progress_bar() if progress else nullcontext()
    with display as bar:
        task = bar.add_task("scoring pairs", total=total) if bar is not None else None
        for batch in route_pairs(moe, tokenizer, pairs, batch_size, digest=digest):
            accumulator.add(batch.side, batch.trace.sample_counts(), batch.trace.lengths,
                            poisson_weights(seed, batch.pair_ids, bootstrap))
            if batch.side == "b":
                seen = batch.pair_ids[-1] + 1
                if bar is not None:
                    bar.advance(task, len(batch.pair_ids))
    if seen == 0:
        raise MoeguardError("no pairs to score; pass at least one pair with messages_a and messages_b")
    return accumulator.result(moe.layers, moe.num_experts, moe.top_k, seen, seed, model_name, digest.hexdigest())


def detect_from_trace(
    trace: RoutingTrace, bootstrap: int = 100, seed: int = 0, model_name: str | None = None,
    top_k: int | None = None,
) -> DetectionResult:
    """Detection from a capture of pairs (``moeguard capture --pairs``), without running the model.

    The trace needs per-sample labels ``pair`` and ``side`` (0 = A, 1 = B); the result equals
    :func:`detect_experts` on the same pairs and model (same counts, same bootstrap weights).
    """
    check_run(1, bootstrap, seed)
    if "pair" not in trace.labels or "side" not in trace.labels:
        raise MoeguardError("this capture holds prompts, not pairs; capture with 'moeguard capture --pairs FILE'")
    counts = trace.sample_counts()
    pair_of, side_of = trace.labels["pair"], trace.labels["side"]
    n_pairs = int(pair_of.max()) + 1 if trace.num_samples else 0
    accumulator = _Accumulator(len(trace.layers), trace.num_experts, bootstrap)
    for side_code, side in enumerate(("a", "b")):
        rows = (side_of == side_code).nonzero().squeeze(1)
        order = rows[torch.argsort(pair_of[rows], stable=True)]
        if pair_of[order].tolist() != list(range(n_pairs)):
            raise MoeguardError(f"the capture does not hold side {side.upper()} of every pair exactly once; "
                                "capture the pairs again")
        for start in range(0, n_pairs, 64):
            chosen = order[start : start + 64]
            accumulator.add(side, counts[chosen], trace.lengths[chosen],
                            poisson_weights(seed, pair_of[chosen].tolist(), bootstrap))
    if n_pairs == 0:
        raise MoeguardError("the capture holds no pairs")
    meta = trace.meta
    k = top_k if top_k is not None else int(meta.get("top_k", trace.top_k))
    return accumulator.result(trace.layers, trace.num_experts, k, n_pairs, seed, model_name or meta.get("model"),
                              meta.get("data_sha256"))

