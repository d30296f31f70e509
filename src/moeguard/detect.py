"""SteerMoE detection (DESIGN §1.2–1.3): paired-contrast expert scores, statistics and selection.

>>> result = detect_experts(model, tokenizer, pairs, batch_size=8, bootstrap=100, seed=0)
>>> result.risk_diff                 # [moe_layers, experts]: rate_A - rate_B on target-span tokens
>>> result.pair_q_values             # Benjamini-Hochberg over sign-flip tests on per-pair differences
>>> result.confidence_interval()     # (low, high): percentile cluster bootstrap of risk_diff
>>> spec = select_experts(result, n_activate=5, n_deactivate=0, max_q=0.05)    # a SteeringSpec

Statistics. The pair is the unit of replication (tokens of one answer are correlated), and identical pairs
are one unit: pairs with the same canonical content form a *cluster* (:mod:`moeguard.pair_stats`), and
``effective_pairs`` counts the clusters. Pair-level p-values (the default test) come from a sign-flip
permutation test of the mean per-cluster rate difference ``d_c = rate_A,c - rate_B,c`` (exact for up to
16 clusters, seeded Monte Carlo otherwise); the two-proportion z-test on token counts (``p_values``) is
kept as the ``token`` test, optimistic because it treats tokens as independent. Confidence intervals of
``risk_diff`` and selection stability use a Poisson bootstrap over clusters: cluster ``c`` gets weight
``w_b(c) ~ Poisson(1)`` in resample ``b`` from a generator seeded by ``(seed, c)``, and every pair of the
cluster carries it, so results are identical for every batch size (and, without duplicates, equal to a
Poisson bootstrap over pairs).

Memory. The pairs are consumed batch by batch; the result keeps per-pair counts ``[P, L, E]`` (int32) and
span lengths ``[P]`` per side, so memory is O(P·L·E) integers (plus ``[resamples, L, E]`` bootstrap
accumulators). All counts are integers, so accumulation is exact.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from itertools import islice

import numpy as np
import torch
from torch import nn

from moeguard.adapters import MoEModel, inspect_moe
from moeguard.data import Pair
from moeguard.errors import MoeguardError, parameter_error
from moeguard.pair_routing import route_pairs
from moeguard.pair_stats import cluster_ids, cluster_sums, percentile_interval, sign_flip_p_values
from moeguard.progress import maybe_progress
from moeguard.routing.trace import RoutingTrace
from moeguard.steer import SteeringSpec

__all__ = [
    "DEFAULT_PERMUTATIONS",
    "TESTS",
    "DetectionResult",
    "benjamini_hochberg",
    "detect_experts",
    "detect_from_trace",
    "poisson_weights",
    "select_experts",
    "two_proportion_p_values",
]

#: The tests behind p/q-values: ``pair`` (sign-flip over distinct pairs, default) and ``token`` (z-test).
TESTS = ("pair", "token")
#: Monte Carlo sign vectors of the pair test when there are more than 16 distinct pairs.
DEFAULT_PERMUTATIONS = 10_000
#: Level of the bootstrap confidence intervals of risk_diff in ``experts.csv``.
CI_LEVEL = 0.95


# ---------------------------------------------------------------------------------------- statistics
def two_proportion_p_values(hits_a: torch.Tensor, tokens_a: int, hits_b: torch.Tensor, tokens_b: int) -> torch.Tensor:
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
def _top_positive(values: torch.Tensor, n: int, per_layer: int, allowed: torch.Tensor | None = None) -> torch.Tensor:
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
    """Counts of top-k hits on target-span tokens for sides A and B, per pair and pooled, plus bootstrap
    accumulators.

    Row ``p`` of every ``[L, E]`` tensor is decoder layer ``layers[p]``. ``boot_*`` hold the
    Poisson-weighted counts of each resample (``None`` without bootstrap). ``pair_counts_*`` ``[P, L, E]``
    and ``pair_tokens_*`` ``[P]`` hold each pair's counts and span lengths, ``clusters[i]`` the index of the
    first pair identical to pair ``i`` (``None`` in results built from pooled counts only: then only the
    token test is available). Build results from per-pair counts with :meth:`from_pairs`.
    Derived statistics are cached: do not modify the tensors of a result after reading them.
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
    pair_counts_a: torch.Tensor | None = None
    pair_counts_b: torch.Tensor | None = None
    pair_tokens_a: torch.Tensor | None = None
    pair_tokens_b: torch.Tensor | None = None
    clusters: torch.Tensor | None = None
    permutations: int = DEFAULT_PERMUTATIONS

    @classmethod
    def from_pairs(
        cls,
        layers: list[int],
        num_experts: int,
        top_k: int,
        pair_counts_a: torch.Tensor,
        pair_tokens_a: torch.Tensor,
        pair_counts_b: torch.Tensor,
        pair_tokens_b: torch.Tensor,
        clusters: torch.Tensor | list[int] | None = None,
        bootstrap: int = 0,
        seed: int = 0,
        permutations: int = DEFAULT_PERMUTATIONS,
        model: str | None = None,
        data_sha256: str | None = None,
    ) -> DetectionResult:
        """A result from per-pair counts ``[P, L, E]`` and span lengths ``[P]`` of both sides.

        ``clusters`` (default: every pair its own) gives for each pair the index of the first identical
        pair (see :func:`moeguard.pair_stats.cluster_ids`). Pooled counts are the sums over pairs; the
        ``bootstrap`` Poisson resamples weight every pair with its cluster's weight.
        """
        shape = (len(layers), num_experts)
        counts = {"a": torch.as_tensor(pair_counts_a), "b": torch.as_tensor(pair_counts_b)}
        tokens = {"a": torch.as_tensor(pair_tokens_a).long(), "b": torch.as_tensor(pair_tokens_b).long()}
        n_pairs = counts["a"].shape[0]
        for side in "ab":
            if tuple(counts[side].shape) != (n_pairs, *shape) or tuple(tokens[side].shape) != (n_pairs,):
                raise MoeguardError(
                    f"per-pair counts of side {side.upper()} must be [{n_pairs}, {shape[0]}, "
                    f"{shape[1]}] with [{n_pairs}] span lengths, got {list(counts[side].shape)} "
                    f"and {list(tokens[side].shape)}"
                )
            empty = (tokens[side] < 1).nonzero()
            if empty.numel():
                raise MoeguardError(
                    f"pair {int(empty[0])} has no counted token on side {side.upper()}; "
                    "every pair needs a non-empty target span"
                )
        clusters = torch.arange(n_pairs) if clusters is None else torch.as_tensor(clusters, dtype=torch.long)
        if (
            tuple(clusters.shape) != (n_pairs,)
            or bool(((clusters < 0) | (clusters > torch.arange(n_pairs))).any())
            or bool((clusters[clusters] != clusters).any())
        ):
            raise MoeguardError("pair clusters must name, for each pair, the first pair identical to it")
        weights = poisson_weights(seed, clusters.tolist(), bootstrap)
        boot: dict[str, torch.Tensor | None] = {}
        for side in "ab":
            flat = counts[side].reshape(n_pairs, -1).long()
            boot[side] = (weights @ flat).view(bootstrap, *shape) if bootstrap else None
            boot[side + "_tokens"] = weights @ tokens[side] if bootstrap else None
        return cls(
            layers=list(layers),
            num_experts=num_experts,
            top_k=top_k,
            counts_a=counts["a"].long().sum(0),
            counts_b=counts["b"].long().sum(0),
            tokens_a=int(tokens["a"].sum()),
            tokens_b=int(tokens["b"].sum()),
            pairs=n_pairs,
            boot_counts_a=boot["a"],
            boot_counts_b=boot["b"],
            boot_tokens_a=boot["a_tokens"],
            boot_tokens_b=boot["b_tokens"],
            seed=seed,
            model=model,
            data_sha256=data_sha256,
            pair_counts_a=counts["a"].int(),
            pair_counts_b=counts["b"].int(),
            pair_tokens_a=tokens["a"],
            pair_tokens_b=tokens["b"],
            clusters=clusters,
            permutations=permutations,
        )

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
        """``[L, E]`` token test: two-sided pooled two-proportion z-test p-values on token counts
        (optimistic: tokens of one pair are not independent; see :attr:`pair_p_values`)."""
        return two_proportion_p_values(self.counts_a, self.tokens_a, self.counts_b, self.tokens_b)

    @property
    def q_values(self) -> torch.Tensor:
        """``[L, E]`` Benjamini–Hochberg q-values of the token test over all (layer, expert)."""
        return benjamini_hochberg(self.p_values)

    # ------------------------------------------------------------------ pair-level statistics
    @property
    def has_pairs(self) -> bool:
        """Whether the result holds per-pair counts (needed by the pair test)."""
        return self.pair_counts_a is not None and self.clusters is not None

    @property
    def effective_pairs(self) -> int | None:
        """Number of distinct pairs (clusters of identical pairs); ``None`` without per-pair counts."""
        return int(torch.unique(self.clusters).numel()) if self.has_pairs else None

    @cached_property
    def cluster_differences(self) -> torch.Tensor | None:
        """``[C, L, E]`` per-cluster rate differences ``d_c = x_A,c / n_A,c - x_B,c / n_B,c`` (clusters in
        order of first occurrence; identical pairs are summed, which leaves one copy's rates)."""
        if not self.has_pairs:
            return None
        parts = (self.pair_counts_a, self.pair_tokens_a, self.pair_counts_b, self.pair_tokens_b)
        sums = [cluster_sums(t, self.clusters) for t in parts]  # type: ignore[arg-type]
        return _risk_diff(*sums)

    @cached_property
    def _sign_flip(self) -> tuple[torch.Tensor, bool] | None:
        if self.cluster_differences is None:
            return None
        return sign_flip_p_values(self.cluster_differences, self.permutations, self.seed)

    @property
    def pair_p_values(self) -> torch.Tensor | None:
        """``[L, E]`` pair test: two-sided sign-flip permutation p-values of the mean per-cluster rate
        difference (see :func:`moeguard.pair_stats.sign_flip_p_values`); ``None`` without per-pair counts."""
        return None if self._sign_flip is None else self._sign_flip[0]

    @cached_property
    def pair_q_values(self) -> torch.Tensor | None:
        """``[L, E]`` Benjamini–Hochberg q-values of the pair test; ``None`` without per-pair counts."""
        p = self.pair_p_values
        return None if p is None else benjamini_hochberg(p)

    @property
    def permutations_exact(self) -> bool | None:
        """Whether the pair test enumerated every sign vector (at most 16 distinct pairs)."""
        return None if self._sign_flip is None else self._sign_flip[1]

    def q_values_of(self, test: str = "pair") -> torch.Tensor:
        """The q-values of ``test`` (``"pair"`` or ``"token"``)."""
        check_test(test)
        if test == "token":
            return self.q_values
        q = self.pair_q_values
        if q is None:
            raise parameter_error(
                "test", "'pair' needs per-pair counts, which this result does not hold; use the token test"
            )
        return q

    def confidence_interval(self, level: float = CI_LEVEL) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(low, high)`` ``[L, E]`` percentile interval of risk_diff over the bootstrap resamples (a
        Poisson cluster bootstrap; resamples without tokens on a side are left out). ``None`` without
        bootstrap."""
        if self.bootstrap == 0:
            return None
        boot = _risk_diff(*self._boot())
        return percentile_interval(boot, level)

    def _boot(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The bootstrap accumulators (only called when ``bootstrap > 0``)."""
        assert self.boot_counts_a is not None and self.boot_tokens_a is not None
        assert self.boot_counts_b is not None and self.boot_tokens_b is not None
        return self.boot_counts_a, self.boot_tokens_a, self.boot_counts_b, self.boot_tokens_b

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
        it (activate if the signed risk difference is > 0, deactivate if < 0, either if 0). The
        resamples are over distinct pairs (identical pairs share one weight). ``None`` without bootstrap."""
        if self.bootstrap == 0:
            return None
        top_k = self.top_k if top_k is None else top_k
        sign = -1.0 if reverse else 1.0
        boot = _risk_diff(*self._boot())
        boot = sign * boot
        boot = torch.nan_to_num(boot, nan=0.0, posinf=0.0, neginf=0.0)  # empty resample sides select nothing
        act = _top_positive(boot, n_activate, top_k)
        deact = _top_positive(-boot, n_deactivate, self.num_experts - top_k)
        share_act, share_deact, share_either = (m.double().mean(0) for m in (act, deact, act | deact))
        full = sign * self.risk_diff
        return torch.where(full > 0, share_act, torch.where(full < 0, share_deact, share_either))

    # ------------------------------------------------------------------ tables and selection
    def rows(self, stability: torch.Tensor | None = None) -> list[dict]:
        """One dict per (layer, expert) in ranking order with the ``experts.csv`` columns.

        ``p_value`` / ``q_value`` are the token test's, ``pair_p_value`` / ``pair_q_value`` the pair
        test's (``None`` without per-pair counts), ``ci_low`` / ``ci_high`` the 95% bootstrap interval
        of ``risk_diff`` (``None`` without bootstrap).
        """
        rate_a, rate_b, diff = self.rate_a, self.rate_b, self.risk_diff
        p, q = self.p_values, self.q_values
        pair_p, pair_q = self.pair_p_values, self.pair_q_values
        interval = self.confidence_interval()

        def value(tensor: torch.Tensor | None, row: int, expert: int) -> float | None:
            return None if tensor is None else float(tensor[row, expert])

        position = {layer: i for i, layer in enumerate(self.layers)}
        out = []
        for layer, expert in self.ranking():
            row = position[layer]
            out.append(
                {
                    "layer": layer,
                    "expert": expert,
                    "rate_a": float(rate_a[row, expert]),
                    "rate_b": float(rate_b[row, expert]),
                    "risk_diff": float(diff[row, expert]),
                    "p_value": float(p[row, expert]),
                    "q_value": float(q[row, expert]),
                    "stability": value(stability, row, expert),
                    "pair_p_value": value(pair_p, row, expert),
                    "pair_q_value": value(pair_q, row, expert),
                    "ci_low": value(None if interval is None else interval[0], row, expert),
                    "ci_high": value(None if interval is None else interval[1], row, expert),
                }
            )
        return out

    def select(self, n_activate: int, n_deactivate: int = 0, **kwargs) -> SteeringSpec:
        """Shorthand for :func:`select_experts` on this result."""
        return select_experts(self, n_activate, n_deactivate, **kwargs)


def check_test(test: str) -> None:
    """``test`` must be one of :data:`TESTS`."""
    if test not in TESTS:
        raise parameter_error("test", f"must be 'pair' (sign-flip test over pairs) or 'token', got {test!r}")


def check_selection(
    n_activate: int,
    n_deactivate: int = 0,
    min_stability: float | None = None,
    max_q: float | None = None,
    bootstrap: int | None = None,
    test: str = "pair",
) -> None:
    """Validate selection settings before any work (one-line errors naming the parameter)."""
    check_test(test)
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
    test: str = "pair",
) -> SteeringSpec:
    """SteerMoE selection (DESIGN §1.3) as a :class:`SteeringSpec` (model name recorded).

    The ``n_activate`` largest positive risk differences (at most ``top_k`` per layer, default the
    model's) are activated, the ``n_deactivate`` most negative ones deactivated (at most
    ``experts - top_k`` per layer, so every token keeps enough experts). ``reverse`` flips the signs
    first. ``max_q`` / ``min_stability`` drop candidates with a larger q-value (of ``test``: ``"pair"``
    or ``"token"``) / smaller bootstrap stability before picking; fewer experts than asked are returned
    when too few qualify.
    """
    check_selection(n_activate, n_deactivate, min_stability, max_q, scores.bootstrap, test)
    top_k = scores.top_k if top_k is None else top_k
    if not 1 <= top_k <= scores.num_experts:
        raise parameter_error("top_k", f"must be between 1 and {scores.num_experts}, got {top_k}")
    allowed = torch.ones(len(scores.layers), scores.num_experts, dtype=torch.bool)
    if max_q is not None:
        allowed &= scores.q_values_of(test) <= max_q
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
class _PairCounts:
    """Per-pair counts ``[b, L, E]`` (int32) and span lengths ``[b]`` per side, collected batch by batch."""

    def __init__(self):
        self.counts: dict[str, list[torch.Tensor]] = {"a": [], "b": []}
        self.tokens: dict[str, list[torch.Tensor]] = {"a": [], "b": []}

    def add(self, side: str, counts: torch.Tensor, tokens: torch.Tensor) -> None:
        self.counts[side].append(counts.int())
        self.tokens[side].append(tokens.long())

    def tensors(self, side: str) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cat(self.counts[side]), torch.cat(self.tokens[side])


def check_run(batch_size: int, bootstrap: int, seed: int, permutations: int = DEFAULT_PERMUTATIONS) -> None:
    """Validate detection settings before any work (one-line errors naming the parameter)."""
    if permutations < 1:
        raise parameter_error("permutations", f"must be at least 1, got {permutations}")
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
    permutations: int = DEFAULT_PERMUTATIONS,
) -> DetectionResult:
    """Score every (layer, expert) on paired conversations (SteerMoE) — streaming over ``pairs``.

    Args:
        model: a loaded transformers MoE model (or its ``MoEModel``).
        tokenizer: its (fast) tokenizer; the chat template is applied when it has one.
        pairs: :class:`~moeguard.data.Pair` objects or dicts in the pair file format; any iterable,
            consumed once, batch by batch (per-pair counts are kept: memory O(pairs · layers · experts)).
        batch_size: conversations per forward call and side (results do not depend on it).
        bootstrap: Poisson-bootstrap resamples over distinct pairs (0: no stability, no CIs).
        seed: bootstrap and sign-flip seed; the weights of pair ``i`` depend only on ``(seed, c)`` where
            ``c`` is the index of the first pair identical to it (``i`` itself without duplicates).
        max_pairs: stop after this many pairs.
        model_name: recorded in the result and the selected spec (default: the model's name_or_path).
        progress: show a rich progress bar on stderr (``total`` sets its length; default ``len(pairs)``).
        permutations: Monte Carlo sign vectors of the pair test (used with more than 16 distinct pairs).
    """
    check_run(batch_size, bootstrap, seed, permutations)
    moe = model if isinstance(model, MoEModel) else inspect_moe(model)
    if model_name is None:
        model_name = getattr(getattr(moe.model, "config", None), "_name_or_path", None) or None
    if total is None and hasattr(pairs, "__len__"):
        total = len(pairs)  # type: ignore[arg-type]
    if max_pairs is not None:
        pairs = islice(pairs, max_pairs)
        total = max_pairs if total is None else min(total, max_pairs)
    collected = _PairCounts()
    keys: list[str] = []
    digest = hashlib.sha256()
    with maybe_progress(progress) as bar:
        task = bar.add_task("scoring pairs", total=total)
        for batch in route_pairs(moe, tokenizer, pairs, batch_size, digest=digest):
            collected.add(batch.side, batch.trace.sample_counts(), batch.trace.lengths)
            if batch.side == "b":
                keys.extend(batch.keys)
                bar.advance(task, len(batch.pair_ids))
    if not keys:
        raise MoeguardError("no pairs to score; pass at least one pair with messages_a and messages_b")
    return DetectionResult.from_pairs(
        moe.layers,
        moe.num_experts,
        moe.top_k,
        *collected.tensors("a"),
        *collected.tensors("b"),
        clusters=cluster_ids(keys),
        bootstrap=bootstrap,
        seed=seed,
        permutations=permutations,
        model=model_name,
        data_sha256=digest.hexdigest(),
    )


def detect_from_trace(
    trace: RoutingTrace,
    bootstrap: int = 100,
    seed: int = 0,
    model_name: str | None = None,
    top_k: int | None = None,
    permutations: int = DEFAULT_PERMUTATIONS,
) -> DetectionResult:
    """Detection from a capture of pairs (``moeguard capture --pairs``), without running the model.

    The trace needs per-sample labels ``pair``, ``side`` (0 = A, 1 = B) and ``cluster`` (index of the first
    identical pair); the result equals :func:`detect_experts` on the same pairs and model (same per-pair
    counts, clusters, bootstrap weights and sign vectors).
    """
    check_run(1, bootstrap, seed, permutations)
    if "pair" not in trace.labels or "side" not in trace.labels:
        raise MoeguardError("this capture holds prompts, not pairs; capture with 'moeguard capture --pairs FILE'")
    if "cluster" not in trace.labels:
        raise MoeguardError(
            "this capture does not mark identical pairs (made by an older moeguard); "
            "capture the pairs again with 'moeguard capture --pairs FILE'"
        )
    counts = trace.sample_counts()
    pair_of, side_of, cluster_of = trace.labels["pair"], trace.labels["side"], trace.labels["cluster"]
    n_pairs = int(pair_of.max()) + 1 if trace.num_samples else 0
    if n_pairs == 0:
        raise MoeguardError("the capture holds no pairs")
    sides, clusters = {}, []
    for side_code, side in enumerate(("a", "b")):
        rows = (side_of == side_code).nonzero().squeeze(1)
        order = rows[torch.argsort(pair_of[rows], stable=True)]
        if pair_of[order].tolist() != list(range(n_pairs)):
            raise MoeguardError(
                f"the capture does not hold side {side.upper()} of every pair exactly once; capture the pairs again"
            )
        sides[side] = (counts[order], trace.lengths[order])
        clusters.append(cluster_of[order])
    if not torch.equal(clusters[0], clusters[1]):
        raise MoeguardError("the capture's pair clusters differ between sides A and B; capture the pairs again")
    meta = trace.meta
    k = top_k if top_k is not None else int(meta.get("top_k", trace.top_k))
    return DetectionResult.from_pairs(
        trace.layers,
        trace.num_experts,
        k,
        *sides["a"],
        *sides["b"],
        clusters=clusters[0],
        bootstrap=bootstrap,
        seed=seed,
        permutations=permutations,
        model=model_name or meta.get("model"),
        data_sha256=meta.get("data_sha256"),
    )
